"""The gateway simulator against the real Kafka: what the report says was sent is exactly what the topics hold,
and the send loop counts only what the broker acknowledged.

Other producers may write to the same topics while this runs, so each test uses a
fresh seed (fresh sensor UUIDs) and counts only messages keyed by its own sensors,
between the end offsets recorded before the run and those after it.
"""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer
from pydantic import ValidationError
from typer.testing import CliRunner

from connectors.gateway.cli import app
from connectors.gateway.faults import FaultRates
from connectors.gateway.plant import Plant, PlantConfig, build_plant, sensor_descriptions
from connectors.gateway.producer import connect, producer_config, register_metadata, stream
from connectors.gateway.report import SendReport, Tally
from connectors.gateway.settings import GatewaySettings
from connectors.gateway.simulate import emit
from contracts import EdgePackage, SensorDescription
from tests.kafka_keyed import ends, read_keyed, refusing_writes

pytestmark = pytest.mark.integration

PACKAGES, METADATA = "edge.packages.v1", "edge.metadata.v1"


def _run(args: list[str], report_path: Path) -> SendReport:
    result = CliRunner().invoke(app, [*args, "--json", str(report_path)])
    assert result.exit_code == 0, result.output
    return SendReport.model_validate_json(report_path.read_text(encoding="utf-8"))


def test_run_reconciles_with_both_topics(kafka: str, tmp_path: Path) -> None:
    seed = random.randrange(1_000_000, 2**31)
    plant = ["--seed", str(seed), "--gateways", "2", "--machines-per-gateway", "2", "--samples-per-package", "200"]
    faults = ["--bad-rate", "0.15", "--duplicate-rate", "0.1", "--features-rate", "0.2", "--gap-rate", "0.1"]
    before = {t: ends(kafka, t) for t in (PACKAGES, METADATA)}

    report = _run(["run", *plant, *faults, "--count", "150", "--rate", "0", "--bootstrap", kafka], tmp_path / "r.json")

    after = {t: ends(kafka, t) for t in (PACKAGES, METADATA)}
    sensors = build_plant(PlantConfig(seed=seed, gateways=2, machines_per_gateway=2)).sensors
    keys = {str(s.sensor_id).encode() for s in sensors}
    assert report.failed == 0
    assert report.stopped_by == "count"
    assert report.packages_total == report.valid + report.bad + report.duplicates == 150
    assert report.bad > 0
    assert report.duplicates > 0

    metadata = read_keyed(kafka, METADATA, before[METADATA], after[METADATA], keys)
    assert len(metadata) == report.metadata_records == len(sensors)
    for key, value in metadata:
        description = SensorDescription.from_wire(value)
        assert key == str(description.sensor_id).encode()

    packages = read_keyed(kafka, PACKAGES, before[PACKAGES], after[PACKAGES], keys)
    assert len(packages) == report.packages_total
    # Re-classify what arrived, roughly as the stream stage will, and compare with the report.
    seen: set[uuid.UUID] = set()
    valid: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    duplicates = samples = 0
    horizon = datetime.now(UTC) + timedelta(hours=1)
    for key, value in packages:
        uuid.UUID(key.decode())  # key = sensor UUID
        try:
            package = EdgePackage.from_wire(value)
        except ValidationError as exc:
            bad[_reason(exc)] += 1
            continue
        assert key == str(package.sensor_id).encode()
        if package.window.start > horizon:
            bad["future_timestamp"] += 1  # valid in form, hours ahead of the broker
        elif package.package_id in seen:
            duplicates += 1
        else:
            seen.add(package.package_id)
            valid[package.kind] += 1
            samples += len(package.samples.t) if package.samples else 0
    assert dict(valid) == report.valid_by_payload
    assert dict(bad) == report.bad_by_reason
    assert duplicates == report.duplicates
    assert samples == report.samples


def _reason(exc: ValidationError) -> str:
    errors = exc.errors()
    types = {e["type"] for e in errors}
    if "json_invalid" in types:
        return "malformed_json"
    if any(e["type"] == "literal_error" and e["loc"] == ("@context",) for e in errors):
        return "unknown_context"
    for specific in ("non_finite_value", "length_mismatch", "time_not_monotonic"):
        if specific in types:
            return specific
    return "schema_violation"


def test_replay_reconciles_with_the_packages_topic(kafka: str, tmp_path: Path) -> None:
    sensors = [uuid.uuid4(), uuid.uuid4()]
    start = int(datetime.now(UTC).timestamp()) * 1_000_000 - 3_600_000_000
    rows = ["timestamp,sensor_id,value"]
    rows += [f"{start + i * 100_000},{sensors[i % 2]},{20 + i * 0.01:.2f}" for i in range(250)]
    rows.append(f"2026-01-01T00:00:00,{sensors[0]},1.0")  # naive time: reported, skipped
    csv_path = tmp_path / "readings.csv"
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    keys = {str(s).encode() for s in sensors}
    before = ends(kafka, PACKAGES)

    report = _run(["replay", str(csv_path), "--samples-per-package", "50", "--bootstrap", kafka], tmp_path / "r.json")

    packages = read_keyed(kafka, PACKAGES, before, ends(kafka, PACKAGES), keys)
    assert [(r.line, "UTC offset" in r.reason) for r in report.bad_rows] == [(252, True)]
    assert report.valid == len(packages) == 6  # 125 readings per sensor in packages of 50
    assert report.samples == 250
    parsed = [EdgePackage.from_wire(value) for _, value in packages]
    assert sum(len(p.samples.t) for p in parsed if p.samples) == 250
    assert {json.loads(value)["gateway_id"] for _, value in packages} == {"gw-replay"}


# --- the send loop itself, on a fresh small plant whose metadata is registered first ----------------------


def _registered_plant(kafka: str) -> tuple[Plant, set[bytes]]:
    plant = build_plant(PlantConfig(seed=random.randrange(1_000_000, 2**31), gateways=1, machines_per_gateway=1))
    producer = connect(GatewaySettings(), kafka)
    register_metadata(producer, sensor_descriptions(plant, datetime.now(UTC)), Tally(), timeout_s=30)
    return plant, {str(s.sensor_id).encode() for s in plant.sensors}


def test_only_messages_the_broker_acknowledged_are_counted(kafka: str) -> None:
    plant, keys = _registered_plant(kafka)
    producer = connect(GatewaySettings(gateway_delivery_timeout_s=10), kafka)
    messages = emit(plant, FaultRates())

    refused = Tally()
    with refusing_writes(kafka, PACKAGES):
        before = ends(kafka, PACKAGES)
        stopped = stream(producer, messages, refused, rate=None, duration=None, count=12, timeout_s=20)
        after = ends(kafka, PACKAGES)
    assert stopped == "count"
    assert (refused.packages_total, refused.failed, len(refused.errors)) == (0, 12, 12)
    assert all("too large" in error for error in refused.errors), refused.errors[:2]
    assert read_keyed(kafka, PACKAGES, before, after, keys) == []

    # The same producer, once the broker takes messages again: each of the next 12 counted once.
    accepted = Tally()
    before = ends(kafka, PACKAGES)
    stream(producer, messages, accepted, rate=None, duration=None, count=12, timeout_s=20)
    assert (accepted.packages_total, accepted.failed) == (12, 0)
    assert len(read_keyed(kafka, PACKAGES, before, ends(kafka, PACKAGES), keys)) == 12


def test_count_duration_or_the_last_message_ends_a_run(kafka: str) -> None:
    plant, keys = _registered_plant(kafka)
    # A local queue of two messages: the loop must wait for deliveries (BufferError) instead of failing.
    producer = Producer({**producer_config(GatewaySettings(), kafka), "queue.buffering.max.messages": 2})
    messages = emit(plant, FaultRates())
    before = ends(kafka, PACKAGES)

    by_count = Tally()
    assert stream(producer, messages, by_count, rate=None, duration=None, count=7, timeout_s=20) == "count"
    by_duration = Tally()
    started = time.monotonic()
    assert stream(producer, messages, by_duration, rate=20.0, duration=1.0, count=None, timeout_s=20) == "duration"
    elapsed = time.monotonic() - started
    by_end = Tally()
    finite = itertools.islice(messages, 3)
    assert stream(producer, finite, by_end, rate=None, duration=None, count=100, timeout_s=20) == "exhausted"

    assert [t.packages_total for t in (by_count, by_duration, by_end)] == [7, 20, 3]
    assert elapsed >= 19 / 20  # paced: the 20th message is due 0.95 s after the first, never sooner
    assert len(read_keyed(kafka, PACKAGES, before, ends(kafka, PACKAGES), keys)) == 7 + 20 + 3
