"""The stream stage at Kafka's size limits: the largest input's dead letter, and a long parked backlog.

Both once crashed the worker's producer (aiokafka refuses to send more than 1 MB by default, and a sensor's
parked packages were one table value), and a crashed worker replays into the same crash after a restart.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from contracts import MAX_INPUT_BYTES, MAX_OUTPUT_BYTES, DeadLetter, EdgePackage, Window
from contracts.package import Samples
from infra.settings import InfraSettings
from infra.streams_worker import Worker, end_offsets, stream_worker
from tests.integration.test_streams_pipeline import (
    TIMEOUT_S,
    _clean_of,
    _collect,
    _metric,
    _package,
    _producer,
    _read,
    _sensor,
)
from tests.kafka_keyed import ends

pytestmark = pytest.mark.integration

PACKAGES = 60  # ~25 KB each: together well over the 1 MB that one table value used to be limited to
SAMPLES = 1000


def _large_package(sensor: uuid.UUID, start: datetime) -> EdgePackage:
    """1000 samples at the sensor's 10 Hz: a 100 s window."""
    t0 = round(start.timestamp() * 1_000_000)
    return EdgePackage(
        package_id=uuid.uuid4(),
        gateway_id="it-limits",
        sensor_id=sensor,
        sent_at=start + timedelta(seconds=101),
        clock_offset_ms=0.0,
        window=Window(start=start, end=start + timedelta(seconds=100)),
        samples=Samples(t=[t0 + i * 100_000 for i in range(SAMPLES)], v=[20.0 + (i % 17) / 10 for i in range(SAMPLES)]),
    )


def _alive(worker: Worker) -> bool:
    return worker.proc is not None and worker.proc.poll() is None


def _gauge(worker: Worker, name: str, **labels: str) -> float:
    """The worker's metric `name` (summed over the samples whose labels include `labels`)."""
    return sum(value for _, value in _metric(worker, name, **labels))


def test_a_limit_sized_dead_letter_and_a_long_parked_backlog_lose_nothing(
    platform: InfraSettings, tmp_path: Path
) -> None:
    since = {topic: ends(platform.kafka_bootstrap, topic) for topic in ("readings.clean.v1", "edge.deadletter.v1")}
    inputs = end_offsets(platform)
    late = uuid.uuid4()
    producer = Producer(
        {
            "bootstrap.servers": platform.kafka_bootstrap,
            "acks": "all",
            "partitioner": "murmur2_random",
            "message.max.bytes": MAX_OUTPUT_BYTES,  # the client's own 1,000,000 would refuse the largest input
        }
    )
    # Malformed JSON as large as edge.packages.v1 takes (the record's key and framing share the limit).
    largest = b'{"@context": "' + b"x" * (MAX_INPUT_BYTES - 200)
    offsets: list[int | None] = []
    producer.produce(
        "edge.packages.v1", key=b"it-largest", value=largest, on_delivery=lambda e, m: offsets.append(m.offset())
    )
    start = datetime.now(UTC) - timedelta(hours=3)
    packages = [_large_package(late, start + timedelta(seconds=100 * i)) for i in range(PACKAGES)]
    for package in packages:
        producer.produce("edge.packages.v1", key=str(late).encode(), value=package.to_wire())
    assert producer.flush(30) == 0
    assert offsets, "the broker refused the largest input"

    with stream_worker(platform, tmp_path, start_at=inputs) as worker:
        deadline = time.monotonic() + TIMEOUT_S
        while _gauge(worker, "vigil_stream_parked_waiting") < PACKAGES and time.monotonic() < deadline:
            assert _alive(worker), f"the worker died: {worker.log}"
            time.sleep(0.5)
        assert _gauge(worker, "vigil_stream_parked_waiting") == PACKAGES
        producer.produce("edge.metadata.v1", key=str(late).encode(), value=_sensor(late, "it-limits").to_wire())
        assert producer.flush(30) == 0

        ours = {str(p.package_id) for p in packages}
        clean = _clean_of(platform, since, ours)
        dead = _collect(
            platform,
            "edge.deadletter.v1",
            since,
            DeadLetter,
            lambda got: any(d.original_key == b"it-largest" for d in got),
        )
        assert _alive(worker), f"the worker died: {worker.log}"
        assert _gauge(worker, "vigil_stream_parked_waiting") == 0

    released = [c for c in clean if str(c.package_id) in ours]
    assert sorted(str(c.package_id) for c in released) == sorted(ours)
    assert all(len(c.v) + sum(c.dropped.values()) == SAMPLES and c.asset_id == "it-limits" for c in released)
    [letter] = [d for d in dead if d.original_key == b"it-largest"]
    assert letter.reason.value == "malformed_json"
    assert letter.original == largest


def test_a_metadata_tombstone_retires_the_sensor_and_is_no_dead_letter(platform: InfraSettings, tmp_path: Path) -> None:
    since = {
        topic: ends(platform.kafka_bootstrap, topic)
        for topic in ("readings.clean.v1", "edge.deadletter.v1", "edge.parked.v1")
    }
    inputs = end_offsets(platform)
    sensor = uuid.uuid4()
    key = str(sensor).encode()
    producer = _producer(platform)
    producer.produce("edge.metadata.v1", key=key, value=_sensor(sensor, "it-retired").to_wire())
    assert producer.flush(30) == 0
    base = datetime.now(UTC) - timedelta(minutes=5)
    before, after = _package(sensor, "it-retire", base, ntp=0.0), _package(sensor, "it-retire", base, ntp=0.0)

    with stream_worker(platform, tmp_path, start_at=inputs) as worker:
        producer.produce("edge.packages.v1", key=key, value=before.to_wire())
        assert producer.flush(30) == 0
        _clean_of(platform, since, {str(before.package_id)})
        producer.produce("edge.metadata.v1", key=key, value=None)  # the sensor is retired
        assert producer.flush(30) == 0
        deadline = time.monotonic() + TIMEOUT_S
        # Counted as it is handled: a tombstone's handling has no await, so it is done when the count shows.
        while _gauge(worker, "vigil_stream_messages_in_total", topic="edge.metadata.v1") < 2:
            assert time.monotonic() < deadline, "the worker never read the tombstone"
            time.sleep(0.5)
        producer.produce("edge.packages.v1", key=key, value=after.to_wire())
        assert producer.flush(30) == 0
        parked = _read(platform, "edge.parked.v1", since["edge.parked.v1"], lambda v: key in v, lambda f: bool(f))
        until = ends(platform.kafka_bootstrap, "edge.deadletter.v1")
        total = sum(until[p] - since["edge.deadletter.v1"][p] for p in until)
        dead = _collect(platform, "edge.deadletter.v1", since, DeadLetter, lambda got: len(got) >= total)

    assert [EdgePackage.from_wire(v).package_id for v in parked] == [after.package_id]
    assert [d for d in dead if d.original_key == key] == []
