"""kill -9 of the stream worker mid-stream loses nothing: a restarted worker picks up where it committed."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import CleanReadingBatch, DeadLetter
from infra.settings import InfraSettings
from infra.streams_worker import Worker, end_offsets, stream_worker, wait_drained
from tests.integration.test_streams_pipeline import _collect, _everything, _package, _producer, _sensor
from tests.kafka_keyed import ends

pytestmark = pytest.mark.integration
PACKAGES = 400
EVERY = 20  # every 20th package is followed by a re-send of an earlier one
RESENT = len(range(EVERY, PACKAGES, EVERY))


def test_kill_9_mid_stream_loses_nothing(platform: InfraSettings, tmp_path: Path) -> None:
    since = {t: ends(platform.kafka_bootstrap, t) for t in ("readings.clean.v1", "edge.deadletter.v1")}
    inputs = end_offsets(platform)  # the worker starts here, so it reads our metadata and not older backlog
    sensors = [uuid.uuid4() for _ in range(6)]
    gateway = f"it-restart-{uuid.uuid4().hex[:6]}"
    producer = _producer(platform)
    for i, sensor in enumerate(sensors):
        producer.produce("edge.metadata.v1", key=str(sensor).encode(), value=_sensor(sensor, f"it-m{i}").to_wire())
    assert producer.flush(30) == 0
    base = datetime.now(UTC) - timedelta(hours=1)
    packages = [
        _package(sensors[i % len(sensors)], gateway, base + timedelta(seconds=i // len(sensors)), ntp=0.0)
        for i in range(PACKAGES)
    ]
    ids = {str(p.package_id) for p in packages}

    def produce_steadily() -> None:
        # ~100 packages/s for 4 s, with re-sends of earlier packages mixed in (bounded loop).
        for i, package in enumerate(packages):
            producer.produce("edge.packages.v1", key=str(package.sensor_id).encode(), value=package.to_wire())
            if i % EVERY == 0 and i > 0:
                again = packages[i - 10]
                producer.produce("edge.packages.v1", key=str(again.sensor_id).encode(), value=again.to_wire())
            if i % 10 == 0:
                producer.poll(0)
                time.sleep(0.1)
        producer.flush(30)

    with stream_worker(platform, tmp_path, start_at=inputs) as first:
        feeder = threading.Thread(target=produce_steadily)
        feeder.start()
        _collect(
            platform,
            "readings.clean.v1",
            since,
            CleanReadingBatch,
            lambda got: len({str(c.package_id) for c in got} & ids) >= PACKAGES // 4,
        )
        first.kill()  # SIGKILL: no flush, no commit, no goodbye
        feeder.join(60)
        second = Worker(platform, first.app_id, tmp_path / "second.log", {})
        second.env = first.env
        second.start()
        try:
            wait_drained(platform, first.app_id)  # every input committed, so every output is in its topic
            until = {topic: ends(platform.kafka_bootstrap, topic) for topic in since}
        finally:
            second.stop()
    # Read to the end, not until the first copy of each: a late second copy would count.
    clean = [
        c
        for c in _everything(platform, "readings.clean.v1", since, until, CleanReadingBatch)
        if str(c.package_id) in ids
    ]
    dead = [
        d for d in _everything(platform, "edge.deadletter.v1", since, until, DeadLetter) if str(d.package_id) in ids
    ]

    per_id = Counter(str(c.package_id) for c in clean)
    assert set(per_id) == ids, f"lost {len(ids - set(per_id))} packages"
    # Re-sends are removed by dedupe even across the restart (its table is rebuilt from its changelog).
    assert Counter(d.reason.value for d in dead)["duplicate"] >= RESENT
    replayed = {pid: n for pid, n in per_id.items() if n > 1}
    # At-least-once: only what was in flight at the kill may be emitted twice (the lake dedupes by package id).
    assert sum(n - 1 for n in replayed.values()) <= 200, replayed
    print(f"\nrestart: {len(ids)} packages, {len(replayed)} re-emitted after the kill, {len(dead)} dead letters")
