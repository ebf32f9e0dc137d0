"""Gateway send loop and report: stop conditions, pacing, and only acknowledged messages are counted.

The send loop is exercised with an in-memory stand-in for the producer; the real
broker is covered by tests/integration/test_gateway_kafka.py.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, Producer
from typer.testing import CliRunner

from connectors.gateway.cli import app
from connectors.gateway.faults import FaultRates
from connectors.gateway.plant import PlantConfig, build_plant
from connectors.gateway.producer import GatewayError, budget, producer_config, stream
from connectors.gateway.report import Tally
from connectors.gateway.settings import GatewaySettings
from connectors.gateway.simulate import emit

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeProducer:
    """Acknowledges on poll/flush like librdkafka; rejects every `fail_every`-th message; is full once."""

    def __init__(self, clock: FakeClock, fail_every: int = 0) -> None:
        self.clock = clock
        self.fail_every = fail_every
        self.pending: list[tuple[int, Callable[[KafkaError | None, Any], None]]] = []
        self.produced: list[tuple[str, bytes, bytes]] = []
        self.full_once = True

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Callable[..., None]) -> None:
        if self.full_once and len(self.produced) == 3:
            self.full_once = False
            raise BufferError("queue full")
        self.produced.append((topic, key, value))
        self.pending.append((len(self.produced), on_delivery))

    def _deliver(self) -> int:
        served, self.pending = self.pending, []
        for number, callback in served:
            failed = self.fail_every and number % self.fail_every == 0
            callback(KafkaError(KafkaError._MSG_TIMED_OUT) if failed else None, None)
        return len(served)

    def poll(self, timeout: float = 0) -> int:
        self.clock.now += timeout
        return self._deliver()

    def flush(self, timeout: float = 0) -> int:
        self._deliver()
        return 0


def _messages(rates: FaultRates | None = None) -> Any:
    return emit(build_plant(PlantConfig()), rates or FaultRates(), now_us=lambda: 0)


def test_count_stops_and_only_acks_are_counted() -> None:
    clock = FakeClock()
    producer = FakeProducer(clock, fail_every=5)
    tally = Tally()
    stopped = stream(
        cast(Producer, producer),
        _messages(),
        tally,
        rate=None,
        duration=None,
        count=40,
        timeout_s=1,
        clock=clock,
    )
    assert stopped == "count"
    assert len(producer.produced) == 40
    assert tally.failed == 8
    assert len(tally.errors) == 8
    assert tally.packages_total == 32
    assert all(topic == "edge.packages.v1" for topic, _, _ in producer.produced)


def test_duration_and_rate_pace_the_run() -> None:
    clock = FakeClock()
    producer = FakeProducer(clock)
    tally = Tally()
    stopped = stream(
        cast(Producer, producer),
        _messages(),
        tally,
        rate=20.0,
        duration=2.0,
        count=None,
        timeout_s=1,
        clock=clock,
    )
    assert stopped == "duration"
    assert len(producer.produced) == 40  # 20/s for 2 s
    assert clock.now == pytest.approx(39 / 20, abs=0.06)


def test_exhausted_iterator_ends_the_run() -> None:
    clock = FakeClock()
    producer = FakeProducer(clock)
    tally = Tally()
    finite = itertools.islice(_messages(), 7)
    stopped = stream(
        cast(Producer, producer), finite, tally, rate=None, duration=None, count=100, timeout_s=1, clock=clock
    )
    assert stopped == "exhausted"
    assert tally.packages_total == 7


def test_tally_reconciles_with_what_was_generated() -> None:
    rates = FaultRates(bad_rate=0.2, duplicate_rate=0.2, features_rate=0.3, gap_rate=0.2, stuck_rate=0.2)
    messages = list(itertools.islice(_messages(rates), 300))
    tally = Tally()
    for message in messages:
        tally.delivered(message)
    counts = tally.counts()
    assert counts["packages_total"] == 300
    assert counts["valid"] + counts["bad"] + counts["duplicates"] == 300
    assert counts["samples"] == sum(m.samples for m in messages if m.category == "valid")
    assert sum(counts["valid_by_payload"].values()) == sum(counts["valid_by_sensor_kind"].values()) == counts["valid"]
    assert counts["injected"].gaps == sum(m.injected.gaps for m in messages if m.category == "valid")


def test_producer_is_idempotent_and_partitions_like_java() -> None:
    config = producer_config(GatewaySettings(), "broker:9092")
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["partitioner"] == "murmur2_random"  # same partition as the JVM and aiokafka for a key


def test_budget() -> None:
    assert budget(100.0, 2.0, None) == 200
    assert budget(100.0, 2.0, 50) == 50
    assert budget(None, None, 5) == 5
    with pytest.raises(GatewayError, match="unbounded"):
        budget(None, 10.0, None)


def test_cli_describe_and_metadata_out(tmp_path: Path) -> None:
    out = tmp_path / "sensors.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "describe",
            "--gateways",
            "2",
            "--machines-per-gateway",
            "1",
            "--degrading",
            "imm-02",
            "--metadata-out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "gw-plant-a-02" in result.output
    assert "imm-02 (wears out)" in result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 8
    assert json.loads(lines[0])["@type"] == "Sensor"


def test_cli_rejects_unknown_machine_and_unknown_kind() -> None:
    result = CliRunner().invoke(app, ["describe", "--degrading", "press-99"])
    assert result.exit_code == 2
    assert "unknown machines" in result.output
    for kinds in ("bogus", "oversized"):  # oversized is a reason code, but not one the simulator injects
        result = CliRunner().invoke(app, ["run", "--bad-kinds", kinds, "--count", "1"])
        assert result.exit_code == 2, result.output


def test_cli_fails_clearly_when_kafka_is_unreachable() -> None:
    result = CliRunner().invoke(
        app, ["run", "--count", "1", "--bootstrap", "127.0.0.1:1"], env={"VIGIL_GATEWAY_CONNECT_TIMEOUT_S": "1"}
    )
    assert result.exit_code == 2
    assert "unreachable" in result.output
