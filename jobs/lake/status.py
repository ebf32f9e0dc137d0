"""The lake writer's status file: written by the writer every few seconds and by its supervisor on a failure.

`make lake`, `make lake-status`, the demo and the tests read it. It is a file
rather than an HTTP endpoint because the writer may be between two processes
(a restart) when someone asks, and the last word must survive that.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.settings import InfraSettings
from jobs.lake.settings import LakeSettings


def status_path(infra: InfraSettings, lake: LakeSettings | None = None) -> Path:
    lake = lake or LakeSettings()
    return lake.status_file or infra.data_dir / "lake" / "status.json"


def write_status(path: Path, **fields: Any) -> None:
    """Replace the status with `fields` plus the time; readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"updated_at": datetime.now(UTC).isoformat(), **fields}, indent=2))
    tmp.replace(path)


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        status: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return status


def fresh_status(
    infra: InfraSettings, max_age_s: float = 30.0, lake: LakeSettings | None = None
) -> dict[str, Any] | None:
    """The writer's status if it was written recently by a running query, else None."""
    status = read_status(status_path(infra, lake))
    if status is None:
        return None
    age = time.time() - datetime.fromisoformat(status["updated_at"]).timestamp()
    return status if status.get("active") and age <= max_age_s else None


@dataclass(frozen=True)
class Supervision:
    """What a supervised writer reports about its supervisor (`jobs.lake.supervisor`), beside its progress."""

    restarts: int = 0  # how many times the supervisor has started the writer again since `make lake`
    last_failure: str | None = None  # why the previous writer process ended, if it failed
    supervisor_pid: int | None = None

    def orphaned(self) -> bool:
        return self.supervisor_pid is not None and os.getppid() != self.supervisor_pid


def summary(infra: InfraSettings) -> str | None:
    """What a live writer process is doing when it is not plainly running a query, in a few words; else None.

    `make status` shows it: a supervisor in its back-off between two writers is alive but writes nothing.
    """
    if fresh_status(infra) is not None:
        return None
    status = read_status(status_path(infra))
    if status is None or status.get("active"):
        return "starting or stalled (no recent progress; see `make lake-status`)"
    if "restart_in_s" in status:
        return "waiting to restart after a failure (see `make lake-status`)"
    return "not writing (see `make lake-status`)"
