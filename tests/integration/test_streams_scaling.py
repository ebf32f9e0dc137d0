"""Two workers of one app split the partitions: every package is processed, and a skewed gateway, whose
sensors hash to partitions of both workers, opens one clock-skew episode, not one per worker."""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2
from confluent_kafka.admin import AdminClient

from contracts import Alert, CleanReadingBatch
from infra.settings import InfraSettings
from infra.streams_worker import Worker, end_offsets, stream_worker, wait_drained
from tests.integration.test_streams_limits import _gauge
from tests.integration.test_streams_pipeline import TIMEOUT_S, _everything, _package, _producer, _sensor
from tests.kafka_keyed import ends

pytestmark = pytest.mark.integration
PARTITIONS = 6
ROUNDS = 5  # packages per sensor


def _sensors_on_every_partition() -> list[uuid.UUID]:
    """One sensor per partition of edge.packages.v1 (murmur2, as every Vigil producer partitions)."""
    found: dict[int, uuid.UUID] = {}
    while len(found) < PARTITIONS:
        sensor = uuid.uuid4()
        found.setdefault((murmur2(str(sensor).encode()) & 0x7FFFFFFF) % PARTITIONS, sensor)
    return [found[p] for p in range(PARTITIONS)]


def _split_between_two(platform: InfraSettings, group: str) -> bool:
    """True once the group has two members, each assigned some edge.packages.v1 partitions."""
    admin = AdminClient({"bootstrap.servers": platform.kafka_bootstrap, "log_level": 4})
    described = admin.describe_consumer_groups([group])[group].result(30)
    owners = [
        m for m in described.members if any(tp.topic == "edge.packages.v1" for tp in m.assignment.topic_partitions)
    ]
    return len(owners) == 2


def test_two_workers_process_everything_and_open_one_clock_skew_episode(
    platform: InfraSettings, tmp_path: Path
) -> None:
    since = {t: ends(platform.kafka_bootstrap, t) for t in ("readings.clean.v1", "alerts.v1")}
    inputs = end_offsets(platform)
    sensors = _sensors_on_every_partition()
    gateway = f"it-two-{uuid.uuid4().hex[:6]}"
    producer = _producer(platform)
    for i, sensor in enumerate(sensors):
        producer.produce("edge.metadata.v1", key=str(sensor).encode(), value=_sensor(sensor, f"it-two-{i}").to_wire())
    assert producer.flush(30) == 0
    with contextlib.ExitStack() as workers:
        first = workers.enter_context(stream_worker(platform, tmp_path, start_at=inputs))
        # A second worker of the same app: the group splits the partitions between the two.
        second = workers.enter_context(stream_worker(platform, tmp_path, app_id=first.app_id, keep_state=True))
        deadline = time.monotonic() + TIMEOUT_S
        while not _split_between_two(platform, first.app_id) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _split_between_two(platform, first.app_id), f"the group never split: {first.log}, {second.log}"
        # The gateway's clock is 5 s slow and it reports no NTP offset: each partition estimates ~ +5 s, over
        # the rule's 2 s limit. Built now: `sent_at` is the time of building, on the gateway's clock.
        base = datetime.now(UTC) - timedelta(minutes=10)
        packages = [
            _package(sensor, gateway, base + timedelta(seconds=r), skew_ms=-5000)
            for r in range(ROUNDS)
            for sensor in sensors
        ]
        ours = {str(p.package_id) for p in packages}
        for package in packages:
            producer.produce("edge.packages.v1", key=str(package.sensor_id).encode(), value=package.to_wire())
        assert producer.flush(30) == 0
        wait_drained(platform, first.app_id)  # both workers committed every input: all outputs are in
        until = {topic: ends(platform.kafka_bootstrap, topic) for topic in since}
        handled = [_packages_in(w) for w in (first, second)]
    clean = _everything(platform, "readings.clean.v1", since, until, CleanReadingBatch)
    alerts = _everything(platform, "alerts.v1", since, until, Alert)

    assert {str(c.package_id) for c in clean} >= ours
    assert all(n > 0 for n in handled), f"one worker processed nothing: {handled}"
    skew = [(a.rule, a.state.value) for a in alerts if a.asset_id == gateway]
    assert skew == [("clock_skew", "open")]
    estimated = [c for c in clean if str(c.package_id) in ours]
    offsets = [(c.clock_source.value, round(c.clock_offset_ms)) for c in estimated]
    assert all(source == "estimated" and abs(offset - 5000) < 1000 for source, offset in offsets), offsets


def _packages_in(worker: Worker) -> float:
    return _gauge(worker, "vigil_stream_messages_in_total", topic="edge.packages.v1")
