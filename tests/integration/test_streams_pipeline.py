"""The stream stage through the real Kafka: a crafted mix, and every input accounted for exactly once."""

from __future__ import annotations

import json
import math
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

from contracts import (
    Alert,
    CleanReadingBatch,
    DeadLetter,
    EdgePackage,
    FlaggedSamples,
    MeasurementRange,
    QualityCode,
    Quantity,
    SensorContext,
    SensorDescription,
    Thresholds,
    Window,
)
from contracts import avro as avro_codec
from contracts.package import Samples
from infra.settings import InfraSettings
from infra.streams_worker import Worker, end_offsets, stream_worker, wait_drained
from tests.kafka_keyed import ends, read_keyed

pytestmark = pytest.mark.integration
TIMEOUT_S = 180


def _producer(settings: InfraSettings) -> Producer:
    # murmur2: the partitioner every Vigil producer uses, so a sensor's topics are co-partitioned.
    return Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
        }
    )


class Sent:
    """What a test produced to edge.packages.v1, by (partition, offset)."""

    def __init__(self) -> None:
        self.kind: dict[tuple[int, int], str] = {}

    def callback(self, kind: str) -> Callable[[Any, Any], None]:
        def done(err: Any, msg: Any) -> None:
            assert err is None, err
            self.kind[(msg.partition(), msg.offset())] = kind

        return done


def _sensor(
    sensor_id: uuid.UUID, machine: str, unit: str = "degC", warning_high: float | None = None
) -> SensorDescription:
    return SensorDescription(
        sensor_id=sensor_id,
        label={"en": f"temperature on {machine}", "de": f"Temperatur an {machine}"},
        quantity=Quantity.TEMPERATURE,
        unit=unit,
        sampling_rate_hz=10.0,
        range=MeasurementRange(min=-40.0, max=300.0),
        thresholds=Thresholds(warning_high=warning_high) if warning_high is not None else None,
        context=SensorContext(machine_id=machine, location_on_machine="bearing", site="it-site"),
        updated_at=datetime.now(UTC),
    )


def _package(
    sensor: uuid.UUID,
    gateway: str,
    start: datetime,
    *,
    level: float = 20.0,
    skew_ms: float = 0.0,
    ntp: float | None = None,
    spikes: tuple[int, ...] = (),
) -> EdgePackage:
    """A 1 s window of 10 Hz samples, on a gateway clock `skew_ms` ahead of true time."""
    g_start = start + timedelta(milliseconds=skew_ms)
    t0 = round(g_start.timestamp() * 1_000_000)
    values: list[float | None] = [level + 0.2 * math.sin(i / 2) + 0.01 * ((i * 7) % 5) for i in range(10)]
    for i in spikes:
        values[i] = float(values[i] or 0.0) + 80.0
    return EdgePackage(
        package_id=uuid.uuid4(),
        gateway_id=gateway,
        sensor_id=sensor,
        sent_at=max(datetime.now(UTC), start + timedelta(seconds=1)) + timedelta(milliseconds=skew_ms),
        clock_offset_ms=ntp,
        window=Window(start=g_start, end=g_start + timedelta(seconds=1)),
        samples=Samples(t=[t0 + i * 100_000 for i in range(10)], v=values),
    )


def _read(
    settings: InfraSettings,
    topic: str,
    since: dict[int, int],
    want: Callable[[bytes], bool],
    until: Callable[[list[bytes]], bool],
) -> list[bytes]:
    """Values on `topic` after `since` offsets that `want` accepts, polled until `until` holds (bounded)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"it-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "log_level": 4,
        }
    )
    consumer.assign([TopicPartition(topic, p, o) for p, o in since.items()])
    found: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline and not until(found):
            message = consumer.poll(0.5)
            if message is not None and message.error() is None and want(message.value() or b""):
                found.append(message.value() or b"")
        return found
    finally:
        consumer.close()


M = TypeVar("M", bound=BaseModel)


def _collect(
    settings: InfraSettings,
    topic: str,
    since: dict[str, dict[int, int]],
    model: type[M],
    done: Callable[[list[M]], bool],
) -> list[M]:
    """Avro records of `model` on `topic` after the `since` offsets, read until `done` holds (bounded in time)."""
    found: list[M] = []
    if done(found):  # e.g. "all of none": nothing to wait for
        return found
    raw = _read(
        settings, topic, since[topic], lambda v: True, lambda f: len(f) > len(found) and _grow(found, f, model, done)
    )
    return found if len(found) == len(raw) else [avro_codec.decode(model, v) for v in raw]


def _clean_of(settings: InfraSettings, since: dict[str, dict[int, int]], ids: set[str]) -> list[CleanReadingBatch]:
    """Clean records after `since` until every package id of `ids` has one (others' records included)."""
    return _collect(
        settings, "readings.clean.v1", since, CleanReadingBatch, lambda got: {str(c.package_id) for c in got} >= ids
    )


def _metric(worker: Worker, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """The (labels, value) samples of metric `name` on the worker's /metrics whose labels include `labels`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]


def _lag(worker: Worker, topic: str) -> dict[int, float]:
    """vigil_stream_consumer_lag of `topic` per partition."""
    return {
        int(labels["partition"]): value for labels, value in _metric(worker, "vigil_stream_consumer_lag", topic=topic)
    }


def _everything(
    settings: InfraSettings,
    topic: str,
    since: dict[str, dict[int, int]],
    until: dict[str, dict[int, int]],
    model: type[M],
) -> list[M]:
    """Every record of `model` on `topic` between the `since` and `until` offsets."""
    raw = read_keyed(settings.kafka_bootstrap, topic, since[topic], until[topic], None)
    return [avro_codec.decode(model, value) for _, value in raw]


def _grow(found: list[M], raw: list[bytes], model: type[M], done: Callable[[list[M]], bool]) -> bool:
    found.extend(avro_codec.decode(model, v) for v in raw[len(found) :])
    return done(found)


def test_crafted_mix_is_accounted_for_exactly_once(platform: InfraSettings, tmp_path: Path) -> None:
    outputs = ("readings.clean.v1", "readings.flagged.v1", "edge.deadletter.v1", "edge.parked.v1", "alerts.v1")
    since = {topic: ends(platform.kafka_bootstrap, topic) for topic in outputs}
    inputs = end_offsets(platform)  # the worker starts here: our messages, not earlier runs' backlog
    known, late, hot = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    gw_ntp, gw_skewed = f"it-ntp-{uuid.uuid4().hex[:6]}", f"it-skew-{uuid.uuid4().hex[:6]}"
    base = datetime.now(UTC) - timedelta(minutes=2)
    producer = _producer(platform)
    for sensor, machine, unit, warn in ((known, "it-press", "degC", None), (hot, "it-oven", "degF", 150.0)):
        producer.produce(
            "edge.metadata.v1", key=str(sensor).encode(), value=_sensor(sensor, machine, unit, warn).to_wire()
        )
    assert producer.flush(30) == 0

    sent = Sent()

    def send(package: EdgePackage | bytes, kind: str, key: uuid.UUID = known) -> None:
        value = package.to_wire() if isinstance(package, EdgePackage) else package
        producer.produce("edge.packages.v1", key=str(key).encode(), value=value, on_delivery=sent.callback(kind))

    valid: list[EdgePackage] = []
    for i in range(20):  # the NTP gateway: clock 800 ms fast and says so
        valid.append(
            _package(
                known, gw_ntp, base + timedelta(seconds=i), skew_ms=800, ntp=-800.0, spikes=(4,) if i % 5 == 0 else ()
            )
        )
    for i in range(12):  # the skewed gateway: 3 s slow, no NTP, over a threshold of its degF oven
        valid.append(_package(hot, gw_skewed, base + timedelta(seconds=i), level=200.0, skew_ms=-3000))
    for p in valid:
        send(p, "valid", p.sensor_id)
    good = json.loads(valid[1].to_wire())
    bad: dict[str, bytes] = {
        "malformed_json": valid[1].to_wire()[:-7],
        "unknown_context": json.dumps({**good, "@context": "https://example.org/v9"}).encode(),
        "schema_violation": json.dumps({k: v for k, v in good.items() if k != "window"}).encode(),
        "non_finite_value": valid[1].to_wire().replace(b'"v":[', b'"v":[NaN,', 1).replace(b'"t":[', b'"t":[1,', 1),
        "length_mismatch": json.dumps(
            {**good, "samples": {"t": good["samples"]["t"], "v": good["samples"]["v"][:-1]}}
        ).encode(),
        "time_not_monotonic": json.dumps(
            {**good, "samples": {"t": good["samples"]["t"][::-1], "v": good["samples"]["v"]}}
        ).encode(),
        "future_timestamp": _package(known, gw_ntp, datetime.now(UTC) + timedelta(hours=3)).to_wire(),
    }
    for reason, raw in bad.items():
        send(raw, reason)
    for p in valid[:3]:
        send(p, "duplicate")
    parked = [_package(late, gw_ntp, base + timedelta(seconds=i), ntp=0.0) for i in range(4)]
    for p in parked:
        send(p, "parked", late)
    assert producer.flush(30) == 0
    ours = {str(p.package_id) for p in valid + parked}

    with stream_worker(platform, tmp_path, start_at=inputs) as worker:
        parked_out = _read(
            platform,
            "edge.parked.v1",
            since["edge.parked.v1"],
            lambda v: str(late).encode() in v,
            lambda f: len(f) >= len(parked),
        )
        assert len(parked_out) == len(parked)
        producer.produce("edge.metadata.v1", key=str(late).encode(), value=_sensor(late, "it-late").to_wire())
        assert producer.flush(30) == 0
        wait_drained(platform, worker.app_id)  # every input committed, so every output is in its topic
        until = {topic: ends(platform.kafka_bootstrap, topic) for topic in outputs}
        lag = _lag(worker, "edge.packages.v1")
        deadline = time.monotonic() + 30  # the lag is reported every 10 s
        while len(lag) < 6 and time.monotonic() < deadline:
            time.sleep(1)
            lag = _lag(worker, "edge.packages.v1")
        assert lag == dict.fromkeys(range(6), 0.0), lag  # every partition reported, nothing left to read

    # Read to the end, not until the first copy of each: a late second copy would count.
    clean = [
        c
        for c in _everything(platform, "readings.clean.v1", since, until, CleanReadingBatch)
        if str(c.package_id) in ours
    ]
    dead = [
        d
        for d in _everything(platform, "edge.deadletter.v1", since, until, DeadLetter)
        if (d.source_topic, d.source_partition, d.source_offset) in {("edge.packages.v1", *k) for k in sent.kind}
    ]
    spiked = {str(p.package_id) for i, p in enumerate(valid) if p.gateway_id == gw_ntp and i % 5 == 0}
    flagged = [
        f
        for f in _everything(platform, "readings.flagged.v1", since, until, FlaggedSamples)
        if str(f.package_id) in ours
    ]
    alerts = [
        a for a in _everything(platform, "alerts.v1", since, until, Alert) if a.asset_id in (gw_skewed, "it-oven")
    ]

    # Every valid and every parked package: exactly one clean record.
    assert Counter(str(c.package_id) for c in clean) == Counter(ours)
    # Every bad message and duplicate: exactly one dead letter with its reason and original bytes.
    assert Counter(d.reason.value for d in dead) == Counter({**{r: 1 for r in bad}, "duplicate": 3})
    for d in dead:
        assert sent.kind[(d.source_partition, d.source_offset)] == d.reason.value
        if d.reason.value in bad:
            assert d.original == bad[d.reason.value]
    # Nothing of ours lands in two places.
    dead_packages = {str(d.package_id) for d in dead if d.package_id and d.reason.value != "duplicate"}
    assert not dead_packages & {str(c.package_id) for c in clean}

    by_id = {str(c.package_id): c for c in clean}
    # Spikes are dropped and counted; NTP offsets applied exactly.
    ntp_batches = [by_id[str(p.package_id)] for p in valid if p.gateway_id == gw_ntp]
    assert sum(c.dropped.get("spike", 0) for c in ntp_batches) == 4
    # ... and kept with their code and place in the package: one flagged record per spiked package, none else.
    assert Counter(str(f.package_id) for f in flagged) == Counter(spiked)
    for f in flagged:
        original = next(p for p in valid if p.package_id == f.package_id)
        assert original.samples is not None
        assert (f.sample_index, f.quality) == ([4], [QualityCode.SPIKE])
        assert f.v == [original.samples.v[4]]  # degC sensor: the value as sent
        assert f.t_raw_us == [original.samples.t[4]]
        assert f.t_us == [original.samples.t[4] - 800_000]
    assert all(c.clock_source.value == "ntp" and c.t_us[0] - c.t_raw_us[0] == -800_000 for c in ntp_batches)
    # The skewed gateway's offset is estimated from broker append times: ~ +3 s.
    skewed = [by_id[str(p.package_id)] for p in valid if p.gateway_id == gw_skewed]
    assert all(c.clock_source.value == "estimated" for c in skewed)
    assert abs(skewed[-1].clock_offset_ms - 3000) < 1000
    # degF -> degC, and parked packages were released after their metadata arrived.
    assert all(c.unit == "degC" and 90 < c.v[0] < 100 for c in skewed)
    assert all(by_id[str(p.package_id)].asset_id == "it-late" for p in parked)
    # Alerts: the skewed gateway's clock, and the oven above its warning threshold.
    rules = Counter((a.rule, a.state.value, a.asset_id) for a in alerts)
    assert rules[("clock_skew", "open", gw_skewed)] == 1
    assert rules[("warning_high", "open", "it-oven")] == 1
    assert sum(rules.values()) == 2, rules  # one open each, no flood: the episodes stay open
