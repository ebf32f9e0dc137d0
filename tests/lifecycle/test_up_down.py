"""`make up` twice keeps one process of each service; `make down` leaves no process of ours.

Runs after the integration tests (its own pytest run): it stops and restarts the platform.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import procs
from infra.settings import InfraSettings

pytestmark = pytest.mark.integration
SERVICES = ("kafka", "minio", "trino")


def _ours(settings: InfraSettings) -> list[tuple[int, str]]:
    """Every live process whose command line names our data folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(") ", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if str(settings.data_dir) in cmdline and state != "Z" and "pytest" not in cmdline:
            found.append((int(entry.name), cmdline))
    return found


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _infra(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra", *args], capture_output=True, text=True, timeout=600)


def test_up_twice_keeps_one_of_each(platform: InfraSettings) -> None:
    before = {name: procs.running_pid(platform, name) for name in SERVICES}
    result = _infra("up")
    assert result.returncode == 0, result.stdout + result.stderr
    after = {name: procs.running_pid(platform, name) for name in SERVICES}
    assert before == after
    assert None not in after.values()
    assert "already running" in result.stdout
    # One process group per service, plus those of apps with a recorded PID (`make lake`, `make rest`, ...):
    # nothing else of ours is running.
    leaders = {pid for name in procs.recorded(platform) if (pid := procs.running_pid(platform, name)) is not None}
    assert set(after.values()) <= leaders
    strays = [(pid, cmd) for pid, cmd in _ours(platform) if _group(pid) not in leaders]
    assert strays == []


def test_down_leaves_nothing_then_up_restores(platform: InfraSettings) -> None:
    result = _infra("down")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _ours(platform) == []
    assert all(
        not procs.port_open(platform.host, p) for p in (platform.kafka_port, platform.minio_port, platform.trino_port)
    )
    status = _infra("status")
    assert status.returncode == 1
    assert "stopped" in status.stdout
    result = _infra("up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _infra("status").returncode == 0


def test_port_taken_by_another_process_is_reported(platform: InfraSettings, tmp_path: Path) -> None:
    # A fresh data folder makes MinIO "not ours"; its port is taken by the running one.
    env = {**os.environ, "VIGIL_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "infra", "up", "minio"], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 1
    assert "already used by another process" in result.stdout
    assert procs.running_pid(platform, "minio") is not None  # the real one was not fought
