"""The lake writer's supervisor (`jobs.lake.supervisor`) with a scripted child process standing in for the writer.

The child is a real process that follows a plan: per run, how long to live and
its exit code, optionally writing a status file error first as the writer does.
The supervisor's real-writer test, a failure on real MinIO, is
tests/integration/test_lake_supervisor.py.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.settings import InfraSettings
from jobs.lake.cli import start_failure
from jobs.lake.settings import LakeSettings
from jobs.lake.status import Supervision, read_status, summary, write_status
from jobs.lake.supervisor import supervise

pytestmark = pytest.mark.unit

# argv: plan file, runs log, status file, restarts, last failure. The plan is a JSON list of
# [seconds, exit code, status error or null]; each run takes the first entry left and logs what it was told.
CHILD = """
import json, sys, time
from datetime import UTC, datetime
plan_path, runs_path, status_path, restarts, last_failure = sys.argv[1:6]
plan = json.loads(open(plan_path).read())
seconds, code, error = plan.pop(0)
open(plan_path, "w").write(json.dumps(plan))
with open(runs_path, "a") as runs:
    runs.write(json.dumps({"restarts": int(restarts), "last_failure": last_failure}) + "\\n")
if error:
    status = {"updated_at": datetime.now(UTC).isoformat(), "active": False, "error": error}
    open(status_path, "w").write(json.dumps(status))
time.sleep(seconds)
sys.exit(code)
"""


class Plan:
    def __init__(self, tmp_path: Path, runs: list[tuple[float, int, str | None]]) -> None:
        self.plan = tmp_path / "plan.json"
        self.runs = tmp_path / "runs.jsonl"
        self.status = tmp_path / "status.json"
        self.plan.write_text(json.dumps(runs))

    def command(self, supervision: Supervision) -> list[str]:
        told = [str(supervision.restarts), supervision.last_failure or ""]
        return [sys.executable, "-c", CHILD, str(self.plan), str(self.runs), str(self.status), *told]

    def told(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.runs.read_text().splitlines()]


def _lake(**overrides: float) -> LakeSettings:
    values = {
        "max_restarts": 2,
        "restart_delay_seconds": 0.05,
        "restart_max_delay_seconds": 0.2,
        "restart_healthy_after_seconds": 30.0,
    }
    return LakeSettings.model_validate(values | overrides)


def test_restarts_after_failures_then_ends_when_the_writer_stops_by_itself(tmp_path: Path) -> None:
    failure = "lake writer query stopped: NoSuchBucket\n\tat org.apache.hadoop.fs.s3a.S3AUtils"
    plan = Plan(tmp_path, [(0, 3, None), (0, 1, failure), (0, 0, None)])
    assert supervise(plan.command, _lake(), plan.status, threading.Event()) == 0
    assert plan.told() == [
        {"restarts": 0, "last_failure": ""},
        {"restarts": 1, "last_failure": "exit code 3"},
        # The writer's own error from the status file it wrote, first line only, names the failure.
        {"restarts": 2, "last_failure": "lake writer query stopped: NoSuchBucket (exit code 1)"},
    ]


def test_gives_up_after_max_restarts_failures_in_a_row(tmp_path: Path) -> None:
    plan = Plan(tmp_path, [(0, 3, None)] * 5)
    assert supervise(plan.command, _lake(max_restarts=2), plan.status, threading.Event()) == 1
    assert len(plan.told()) == 3  # the first run and two restarts
    status = read_status(plan.status)
    assert status is not None
    assert status["active"] is False
    assert status["error"].startswith("gave up after 3 failures in a row, the last: exit code 3")
    assert status["restarts"] == 2


def test_a_failure_after_a_healthy_run_starts_a_new_count(tmp_path: Path) -> None:
    # With one restart allowed per streak, quick-late-quick would give up if the late failure still counted.
    # "Quick" = Python's start-up and exit, well under the 2 s that make a run healthy even on a loaded machine.
    plan = Plan(tmp_path, [(0, 3, None), (2.5, 3, None), (0, 3, None), (0, 0, None)])
    lake = _lake(max_restarts=1, restart_healthy_after_seconds=2.0)
    assert supervise(plan.command, lake, plan.status, threading.Event()) == 0
    assert [run["restarts"] for run in plan.told()] == [0, 1, 2, 3]


def _stop_once(stopping: threading.Event, ready: Callable[[], bool]) -> None:
    """Set `stopping` as soon as `ready()` holds (checked every 20 ms, for at most 60 s), from another thread."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.02)
        stopping.set()

    threading.Thread(target=watch, daemon=True).start()


def test_a_stop_request_ends_the_writer_and_restarts_nothing(tmp_path: Path) -> None:
    plan = Plan(tmp_path, [(60, 0, None), (0, 0, None)])
    stopping = threading.Event()
    _stop_once(stopping, plan.runs.exists)  # the writer has started
    began = time.monotonic()
    assert supervise(plan.command, _lake(), plan.status, stopping) == 0
    assert time.monotonic() - began < 60  # the 60 s child was terminated, not waited for
    assert len(plan.told()) == 1


def test_a_stop_request_cuts_a_back_off_short(tmp_path: Path) -> None:
    plan = Plan(tmp_path, [(0, 3, None), (0, 0, None)])
    stopping = threading.Event()
    _stop_once(stopping, lambda: "restart_in_s" in (read_status(plan.status) or {}))  # in its back-off
    began = time.monotonic()
    lake = _lake(restart_delay_seconds=60, restart_max_delay_seconds=60)
    assert supervise(plan.command, lake, plan.status, stopping) == 0
    assert time.monotonic() - began < 60  # the 60 s back-off was cut short
    assert len(plan.told()) == 1
    status = read_status(plan.status)
    assert status is not None
    assert status["error"] == "exit code 3; restart 1 in 60 s"
    assert status["restart_in_s"] == 60


def test_status_summary_tells_a_back_off_from_a_running_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make status` lists the supervisor's PID as alive during a back-off: the summary says what it is doing."""
    plan = Plan(tmp_path, [(0, 3, None), (0, 0, None)])
    monkeypatch.setenv("VIGIL_LAKE_STATUS_FILE", str(plan.status))
    infra = InfraSettings()
    assert summary(infra) == "starting or stalled (no recent progress; see `make lake-status`)"  # no file yet
    stopping = threading.Event()
    lake = _lake(restart_delay_seconds=60, restart_max_delay_seconds=60)
    supervisor = threading.Thread(target=supervise, args=(plan.command, lake, plan.status, stopping))
    supervisor.start()
    try:
        deadline = time.monotonic() + 10
        while (read_status(plan.status) or {}).get("restart_in_s") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert summary(infra) == "waiting to restart after a failure (see `make lake-status`)"
    finally:
        stopping.set()
        supervisor.join()
    write_status(plan.status, active=True, batch_id=7)  # what a writer running its query writes
    assert summary(infra) is None


def test_a_failed_start_names_the_failure_written_since_it_began(tmp_path: Path) -> None:
    status = tmp_path / "status.json"
    write_status(status, active=False, error="stopped")  # the previous run's last word
    began = datetime.now(UTC)
    assert start_failure(status, began, supervised=True) == []
    assert start_failure(tmp_path / "none.json", began, supervised=True) == []
    write_status(status, active=False, error="UnknownStoreException: s3a://nope (exit code 1); restart 1 in 10 s")
    assert start_failure(status, began, supervised=False) == [
        "the writer failed: UnknownStoreException: s3a://nope (exit code 1); restart 1 in 10 s"
    ]
    assert "make lake-status" in start_failure(status, began, supervised=True)[1]
