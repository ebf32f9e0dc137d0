"""The supervised lake writer (`python -m jobs.lake supervise`, what `make lake` runs) recovers from a real failure.

The writer gets a lake root in a MinIO bucket that does not exist yet, so each
start fails on real S3A with NoSuchBucket. Once the test creates the bucket,
the supervisor's next restart must bring the query up, and the status file
must tell the story. It runs beside any writer `make lake` started: own bucket,
checkpoint and status file, no Trino registration, reading from the topics' ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import minio
from infra.settings import REPO_ROOT, InfraSettings
from jobs.lake.status import read_status

pytestmark = pytest.mark.integration


def _wait_for(
    status: Path, proc: subprocess.Popen[bytes], what: str, ok: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the supervisor exited ({proc.returncode}) while waiting for {what}"
        last = read_status(status)
        if last is not None and ok(last):
            return last
        time.sleep(1)
    raise AssertionError(f"no status with {what} within 240 s; last: {read_status(status)}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def bucket(platform: InfraSettings) -> Iterator[str]:
    name = f"it-sup-{uuid.uuid4().hex[:10]}"
    yield name
    client = minio.client(platform)
    if client.bucket_exists(name):
        for obj in client.list_objects(name, recursive=True):
            client.remove_object(name, obj.object_name)
        client.remove_bucket(name)


def _supervise(platform: InfraSettings, bucket: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`python -m jobs.lake supervise` writing to `bucket`, in a process group of its own, and its status file."""
    status = tmp_path / "status.json"
    env = {
        **os.environ,
        "VIGIL_LAKE_ROOT": f"s3a://{bucket}",
        "VIGIL_LAKE_CHECKPOINT_DIR": str(tmp_path / "checkpoint"),
        "VIGIL_LAKE_STATUS_FILE": str(status),
        "VIGIL_LAKE_REGISTER_IN_TRINO": "false",
        "VIGIL_LAKE_STARTING_OFFSETS": "latest",
        "VIGIL_LAKE_TRIGGER_SECONDS": "2",
        "VIGIL_LAKE_MAX_RESTARTS": "30",
        "VIGIL_LAKE_RESTART_DELAY_SECONDS": "1",
        "VIGIL_LAKE_RESTART_MAX_DELAY_SECONDS": "2",
    }
    argv = [sys.executable, "-m", "jobs.lake", "supervise", "--data-dir", str(platform.data_dir)]
    with (tmp_path / "lake.log").open("wb") as log:
        proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return proc, status


def _assert_stopped_cleanly(proc: subprocess.Popen[bytes], status: Path) -> None:
    """The supervisor exits 0, nothing of its group (writer, JVM) is left, and the writer's last word is "stopped"."""
    assert proc.wait(120) == 0
    deadline = time.monotonic() + 60
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _group_alive(proc.pid), "the writer outlived its supervisor"
    final = read_status(status)
    assert final is not None
    assert final["active"] is False
    assert final["error"] == "stopped"


def test_supervisor_restarts_a_failed_writer_until_it_runs(
    platform: InfraSettings, bucket: str, tmp_path: Path
) -> None:
    proc, status = _supervise(platform, bucket, tmp_path)
    try:
        failed = _wait_for(status, proc, "a failure and a restart ahead", lambda s: "restart" in (s.get("error") or ""))
        assert "NoSuchBucket" in failed["error"] or "UnknownStoreException" in failed["error"], failed
        assert failed["active"] is False

        minio.client(platform).make_bucket(bucket)
        running = _wait_for(
            status, proc, "a running query", lambda s: s.get("active") is True and s.get("batch_id") is not None
        )
        assert running["restarts"] >= 1
        assert bucket in (running["last_failure"] or ""), running
        assert running["error"] is None
        tables = {o.object_name for o in minio.client(platform).list_objects(bucket, prefix="silver/", recursive=False)}
        assert "silver/readings/" in tables  # the restarted writer created its tables in the new bucket

        # A stop sent to the supervisor alone (not its process group) still stops the writer and its JVM.
        proc.send_signal(signal.SIGTERM)
        _assert_stopped_cleanly(proc, status)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_stop_sent_to_the_whole_group_stops_the_writer_cleanly(
    platform: InfraSettings, bucket: str, tmp_path: Path
) -> None:
    """What `make down` and `make lake-stop` do: SIGTERM to the group. The JVM must not die under the writer
    (it ignores SIGTERM and follows its Python process), so the writer stops its query and says "stopped"."""
    minio.client(platform).make_bucket(bucket)
    proc, status = _supervise(platform, bucket, tmp_path)
    try:
        _wait_for(status, proc, "a running query", lambda s: s.get("active") is True and s.get("batch_id") is not None)
        os.killpg(proc.pid, signal.SIGTERM)
        _assert_stopped_cleanly(proc, status)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
