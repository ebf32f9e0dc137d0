"""A clean record the broker refuses ends the worker before its package's offset is committed; the package is
not lost: the restarted worker replays it and the record arrives once the broker takes it again.

Before streams/deliveries.py, Faust logged the refusal, committed the offset, and the package never reached
readings.clean.v1.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import CleanReadingBatch
from infra.settings import InfraSettings
from infra.streams_worker import Worker, end_offsets, stream_worker, wait_drained
from streams.deliveries import EXIT_SEND_FAILED
from tests.integration.test_streams_pipeline import _everything, _package, _producer, _sensor
from tests.kafka_keyed import ends, refusing_writes

pytestmark = pytest.mark.integration
CLEAN = "readings.clean.v1"


def test_a_refused_clean_record_stops_the_worker_and_is_replayed(platform: InfraSettings, tmp_path: Path) -> None:
    since = {CLEAN: ends(platform.kafka_bootstrap, CLEAN)}
    inputs = end_offsets(platform)
    sensor = uuid.uuid4()
    producer = _producer(platform)
    producer.produce("edge.metadata.v1", key=str(sensor).encode(), value=_sensor(sensor, "it-refused").to_wire())
    assert producer.flush(30) == 0
    package = _package(sensor, f"it-refused-{uuid.uuid4().hex[:6]}", datetime.now(UTC) - timedelta(minutes=1))

    with stream_worker(platform, tmp_path, start_at=inputs) as first:
        assert first.proc is not None
        with refusing_writes(platform.kafka_bootstrap, CLEAN):
            producer.produce("edge.packages.v1", key=str(sensor).encode(), value=package.to_wire())
            assert producer.flush(30) == 0
            deadline = time.monotonic() + 120
            while first.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
        assert first.proc.returncode == EXIT_SEND_FAILED, f"worker still running or other exit; see {first.log}"
        assert "exiting before the input's offset is committed" in first.log.read_text()

        second = Worker(platform, first.app_id, tmp_path / "second.log", {})
        second.env = first.env
        second.start()
        try:
            wait_drained(platform, first.app_id)
            until = {CLEAN: ends(platform.kafka_bootstrap, CLEAN)}
        finally:
            second.stop()

    clean = [c for c in _everything(platform, CLEAN, since, until, CleanReadingBatch) if c.sensor_id == sensor]
    # At least once: a restarted worker may emit a replayed package twice (the lake keeps one per package id).
    assert {c.package_id for c in clean} == {package.package_id}
