"""`make status` rows for apps (lake writer, REST broker, ...): which count as healthy, so its exit code tells.

Real processes and PID files in a temporary data folder; no service is needed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.rest.tls import ensure_self_signed
from infra import procs
from infra.cli import app_health
from infra.errors import InfraError
from infra.settings import InfraSettings
from jobs.lake.status import status_path, write_status

pytestmark = pytest.mark.unit


@pytest.fixture
def infra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InfraSettings:
    monkeypatch.setenv("VIGIL_LAKE_STATUS_FILE", str(tmp_path / "lake-status.json"))
    settings = InfraSettings(data_dir=tmp_path / "data")
    settings.run_dir.mkdir(parents=True)
    return settings


@pytest.fixture
def live_pid(infra: InfraSettings) -> Iterator[int]:
    """A process whose command line names the data folder, as `procs.running_pid` requires of ours."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(infra.data_dir)])
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    deadline = time.monotonic() + 10
    while str(infra.data_dir).encode() not in cmdline.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)  # between fork and exec the child still has pytest's command line
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _record(infra: InfraSettings, name: str, pid: int) -> None:
    procs.pid_file(infra, name).write_text(str(pid))


def test_an_app_whose_process_exited_is_unhealthy(infra: InfraSettings) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass", str(infra.data_dir)])
    gone.wait()
    _record(infra, "gateway", gone.pid)
    state = app_health(infra, "gateway")
    assert (state.pid, state.healthy) == (None, False)
    assert "exited" in state.text


def test_a_live_app_without_a_detail_probe_is_running(infra: InfraSettings, live_pid: int) -> None:
    _record(infra, "gateway", live_pid)
    state = app_health(infra, "gateway")
    assert (state.pid, state.healthy) == (live_pid, True)
    assert "running" in state.text


def test_a_live_lake_writer_counts_only_while_its_query_reports_progress(infra: InfraSettings, live_pid: int) -> None:
    _record(infra, "lake", live_pid)
    status_file = status_path(infra)  # the file the `infra` fixture points the lake at
    write_status(status_file, active=False, error="boom", restart_in_s=60)
    waiting = app_health(infra, "lake")
    assert (waiting.pid, waiting.healthy) == (live_pid, False)
    assert "waiting to restart" in waiting.text
    write_status(status_file, active=True, batch_id=3)
    assert app_health(infra, "lake").healthy


def test_a_rest_broker_that_does_not_answer_health_is_unhealthy(
    infra: InfraSettings, live_pid: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "rest.crt", tmp_path / "rest.key"
    ensure_self_signed(cert, key, "127.0.0.1")
    with socket.socket() as probe:  # a port nothing listens on, like a crashed broker's
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in {"CERT_FILE": cert, "KEY_FILE": key, "PORT": port}.items():
        monkeypatch.setenv(f"VIGIL_REST_{name}", str(value))
    _record(infra, "rest", live_pid)
    state = app_health(infra, "rest")
    assert not state.healthy
    assert "not answering /health" in state.text


def test_a_rest_broker_whose_certificate_is_gone_is_reported_not_a_crash(
    infra: InfraSettings, live_pid: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_REST_CERT_FILE", str(tmp_path / "deleted.crt"))
    _record(infra, "rest", live_pid)
    state = app_health(infra, "rest")
    assert not state.healthy
    assert "cannot read its certificate" in state.text
    assert "deleted.crt" in state.text


def test_a_start_that_never_gets_healthy_names_the_probe_error(tmp_path: Path) -> None:
    settings = InfraSettings(data_dir=tmp_path)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:

        def probe() -> bool:
            raise ConnectionRefusedError("[Errno 111] Connection refused")

        with pytest.raises(InfraError, match="last: the probe failed: ConnectionRefusedError"):
            procs.wait_healthy(settings, "kafka", child.pid, probe, timeout=1.5)
    finally:
        child.kill()
        child.wait()
