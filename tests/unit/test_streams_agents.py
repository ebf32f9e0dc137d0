"""The three agents of `streams/app.py`, driven through Faust's own `Agent.test_context()`.

No broker is involved: `test_context()` feeds each event through an in-memory channel (partition 0,
offsets counting from 0), and what the agents send to our output topics is recorded by replacing
the `send` of those topic objects. Table changelog writes only land in the buffer of a producer that
is never started, and a guard fails the test if anything opens a socket. The same agents against a
real Kafka are exercised by `tests/integration/test_streams_pipeline.py`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest

import streams.app as streams_app
from contracts import Alert, CleanReadingBatch, DeadLetter, FlaggedSamples, QualityCode, ReasonCode
from contracts import avro as avro_codec
from streams.dedupe import SeenExpiry
from streams.pipeline import process

pytestmark = pytest.mark.unit

TIMEOUT_S = 10.0
EXAMPLE_SENSOR_ID = "6f1c2a0e-4b7d-4e8a-9c51-2f3d8e9a0b11"
# Broker append time of the example package: one second after its window ends, so it is not "future".
APPEND = datetime(2026, 11, 23, 8, 0, 2, tzinfo=UTC)
OUTPUTS = ("deadletter_topic", "clean_topic", "flagged_topic", "alerts_topic", "parked_topic", "clock_reports_topic")
TABLES = ("seen", "sensors", "parked", "sensor_state", "gateway_clocks", "clock_episodes")


def _example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(resources.files("contracts").joinpath("examples", name).read_text())
    return document


def _package(sensor_id: str = EXAMPLE_SENSOR_ID, package_id: str | None = None) -> bytes:
    """The example samples package (10 samples at 10 Hz, one null), for `sensor_id`, with a fresh id."""
    document = _example("edge_package.samples.json")
    document["sensor_id"] = sensor_id
    document["package_id"] = package_id or str(uuid.uuid4())
    return json.dumps(document).encode()


def _sensor(sensor_id: str = EXAMPLE_SENSOR_ID, unit: str = "degC") -> bytes:
    document = _example("sensor_description.json")
    document["sensor_id"] = sensor_id
    document["unit"] = unit
    return json.dumps(document).encode()


def _fail_first_process(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the first call of the pipeline's `process` raise; later calls run it. Returns the call log."""
    calls: list[int] = []

    def flaky_process(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(calls) + 1)
        if len(calls) == 1:
            raise RuntimeError("stage exploded")
        return process(*args, **kwargs)

    monkeypatch.setattr(streams_app, "process", flaky_process)
    return calls


@dataclass(frozen=True)
class Sent:
    topic: str
    key: bytes | None
    value: bytes
    headers: Any


@dataclass
class Harness:
    """What the agents sent, and how many events their handlers have finished.

    Each send returns its delivery, a future the broker would complete on its acknowledgement: done at once,
    unless `hold_deliveries` is set; then it stays pending in `deliveries` until the test completes it.
    """

    sent: list[Sent] = field(default_factory=list)
    handled: int = 0
    hold_deliveries: bool = False
    deliveries: list[asyncio.Future[None]] = field(default_factory=list)

    def on(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]

    def dead_letters(self) -> list[DeadLetter]:
        return [avro_codec.decode(DeadLetter, s.value) for s in self.on("deadletter_topic")]

    def clean(self) -> list[CleanReadingBatch]:
        return [avro_codec.decode(CleanReadingBatch, s.value) for s in self.on("clean_topic")]

    async def deliver(
        self, ctx: Any, value: bytes, *, key: bytes | None, at: datetime = APPEND, headers: Any = None
    ) -> None:
        """Put one message on the agent's test channel and wait until its handler has returned.

        `put(wait=True)` returns once Faust's test wrapper has seen the value, which is before the agent
        body ran; waiting for `_guarded` to return makes "nothing else was sent" assertions meaningful.
        """
        target = self.handled + 1
        await asyncio.wait_for(ctx.put(value, key=key, timestamp=at.timestamp(), headers=headers), TIMEOUT_S)

        async def done() -> None:
            while self.handled < target:
                await asyncio.sleep(0)

        await asyncio.wait_for(done(), TIMEOUT_S)


def _refuse_connect(*args: Any, **kwargs: Any) -> None:
    raise AssertionError(f"unit test tried to open a network connection: {args[1:]}")


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    h = Harness()
    monkeypatch.setattr(socket.socket, "connect", _refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse_connect)

    for name in OUTPUTS:

        async def send(
            *, key: bytes | None = None, value: bytes | None = None, headers: Any = None, _name: str = name, **_: Any
        ) -> asyncio.Future[None]:
            h.sent.append(Sent(_name, key, value or b"", headers))
            delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if not h.hold_deliveries:
                delivery.set_result(None)
            h.deliveries.append(delivery)
            return delivery

        monkeypatch.setattr(getattr(streams_app, name), "send", send)

    guarded = streams_app._guarded

    async def counted(event: Any, handler: Callable[[Any], Awaitable[None]]) -> None:
        try:
            await guarded(event, handler)
        finally:
            h.handled += 1

    monkeypatch.setattr(streams_app, "_guarded", counted)

    # The tables are module-level and keep their in-memory state between tests.
    for table in TABLES:
        getattr(streams_app, table).data.clear()
    streams_app.sensor_states.forget()
    streams_app.clocks.forget()
    streams_app.clock_gate.forget()
    streams_app.expiry.forget()
    yield h
    for table in TABLES:
        getattr(streams_app, table).data.clear()
    streams_app.sensor_states.forget()
    streams_app.clocks.forget()
    streams_app.clock_gate.forget()
    streams_app.expiry.forget()


@pytest.mark.parametrize(("unit", "first_value"), [("degC", 20.0), ("degF", (20.0 - 32.0) * 5.0 / 9.0)])
def test_known_sensor_package_becomes_one_clean_record(harness: Harness, unit: str, first_value: float) -> None:
    package = _package()
    package_id = json.loads(package)["package_id"]

    async def scenario() -> None:
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(unit=unit), key=EXAMPLE_SENSOR_ID.encode())
        async with streams_app.packages_agent.test_context() as packages:
            await harness.deliver(packages, package, key=EXAMPLE_SENSOR_ID.encode())

    asyncio.run(scenario())

    assert harness.on("deadletter_topic") == []
    assert harness.on("parked_topic") == []
    [sent] = harness.on("clean_topic")
    assert sent.key == EXAMPLE_SENSOR_ID.encode()
    [clean] = harness.clean()
    assert str(clean.package_id) == package_id
    assert str(clean.sensor_id) == EXAMPLE_SENSOR_ID
    assert clean.unit == "degC"  # canonical for temperature, whatever the sensor reports in
    assert clean.v[0] == pytest.approx(first_value)
    assert len(clean.v) == 9
    assert clean.dropped == {"non_finite": 1}  # the example's trailing null
    assert (clean.source_topic, clean.source_partition, clean.source_offset) == ("edge.packages.v1", 0, 0)
    assert clean.received_at == APPEND
    assert clean.asset_id == "press-01"
    # Flagged, not deleted: the null travels on with its code and its place in the package.
    [sent_flagged] = harness.on("flagged_topic")
    assert sent_flagged.key == EXAMPLE_SENSOR_ID.encode()
    flagged = avro_codec.decode(FlaggedSamples, sent_flagged.value)
    assert (str(flagged.package_id), flagged.asset_id, flagged.unit) == (package_id, "press-01", "degC")
    assert flagged.sample_index == [9]
    assert flagged.quality == [QualityCode.NON_FINITE]
    assert math.isnan(flagged.v[0])
    assert flagged.t_raw_us == [json.loads(package)["samples"]["t"][9]]
    assert flagged.t_us == [flagged.t_raw_us[0] + round(clean.clock_offset_ms * 1000)]


def test_malformed_bytes_become_a_dead_letter_kept_byte_for_byte(harness: Harness) -> None:
    garbage = b'\xff\xfe{"@context": not json \x00'

    async def scenario() -> None:
        async with streams_app.packages_agent.test_context() as packages:
            await harness.deliver(packages, garbage, key=b"some-key")

    asyncio.run(scenario())

    assert [s.topic for s in harness.sent] == ["deadletter_topic"]
    [letter] = harness.dead_letters()
    assert letter.reason is ReasonCode.MALFORMED_JSON
    assert letter.original == garbage
    assert letter.original_key == b"some-key"
    assert letter.stage == "validate"
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("edge.packages.v1", 0, 0)
    assert letter.source_timestamp == APPEND
    assert harness.on("deadletter_topic")[0].key == b"some-key"


def test_the_same_package_twice_is_a_duplicate_dead_letter(harness: Harness) -> None:
    package = _package()
    package_id = json.loads(package)["package_id"]
    key = EXAMPLE_SENSOR_ID.encode()

    async def scenario() -> None:
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(), key=key)
        async with streams_app.packages_agent.test_context() as packages:
            await harness.deliver(packages, package, key=key)
            await harness.deliver(packages, package, key=key)

    asyncio.run(scenario())

    outputs = [s.topic for s in harness.sent if s.topic not in ("alerts_topic", "clock_reports_topic")]
    assert outputs == ["clean_topic", "flagged_topic", "deadletter_topic"]
    [clean] = harness.clean()
    assert str(clean.package_id) == package_id
    [letter] = harness.dead_letters()
    assert letter.reason is ReasonCode.DUPLICATE
    assert letter.stage == "dedupe"
    assert str(letter.package_id) == package_id
    assert letter.original == package
    assert letter.source_offset == 1


def test_a_skewed_gateway_is_reported_by_its_partition_and_alerted_once_per_episode(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = EXAMPLE_SENSOR_ID.encode()
    # A long report interval: only a crossing of the rule's limit may send a report within this test.
    monkeypatch.setattr(streams_app.clock_gate, "interval_s", 3600.0)

    def reporting(offset_ms: float) -> bytes:
        document = json.loads(_package())
        document["clock_offset_ms"] = offset_ms
        return json.dumps(document).encode()

    async def scenario() -> None:
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(), key=key)
        async with streams_app.packages_agent.test_context() as packages:
            for offset_ms in (5000.0, 5100.0, 4900.0, -12.5):  # 5 s off (limit 2 s), then back in sync
                await harness.deliver(packages, reporting(offset_ms), key=key)
        reports = harness.on("clock_reports_topic")
        # The first package, and the one that crossed back under the limit: not one report per package.
        assert [json.loads(r.value)["offset_ms"] for r in reports] == [5000.0, -12.5]
        assert {r.key for r in reports} == {b"gw-plant-a-01"}
        async with streams_app.clock_agent.test_context() as clock:
            for report in [*reports, reports[0]]:  # and the first again, as a replay after a crash would
                await harness.deliver(clock, report.value, key=report.key)

    asyncio.run(scenario())

    alerts = [avro_codec.decode(Alert, s.value) for s in harness.on("alerts_topic")]
    skew = [(a.rule, a.state.value, a.asset_id) for a in alerts if a.rule == "clock_skew"]
    assert skew == [("clock_skew", "open", "gw-plant-a-01")]  # one open; the episode stays open until 5 clear
    assert streams_app.clock_episodes.data["gw-plant-a-01"]["open"] is True
    assert sorted(streams_app.gateway_clocks.data) == ["gw-plant-a-01/0"]  # the window is the partition's own
    assert harness.on("deadletter_topic") == []


@pytest.mark.parametrize("header_form", ["dict", "kafka_pairs"])
def test_unknown_sensor_is_parked_then_released_by_its_metadata(harness: Harness, header_form: str) -> None:
    sensor_id = str(uuid.uuid4())
    key = sensor_id.encode()
    package = _package(sensor_id)
    package_id = json.loads(package)["package_id"]
    parked_at = datetime(2026, 11, 23, 8, 5, tzinfo=UTC)  # the parked copy is read later than the original

    async def scenario() -> None:
        async with streams_app.packages_agent.test_context() as packages:
            await harness.deliver(packages, b"not json", key=b"other")  # so the package sits at offset 1
            await harness.deliver(packages, package, key=key)

        [parked] = harness.on("parked_topic")
        assert parked.key == key
        assert parked.value == package
        assert parked.headers == {
            "vigil-source-partition": b"0",
            "vigil-source-offset": b"1",
            "vigil-source-time-ms": str(round(APPEND.timestamp() * 1000)).encode(),
        }
        assert harness.clean() == []

        # Kafka hands headers back as (key, bytes) pairs; Faust's test channel keeps what it was given.
        headers = parked.headers if header_form == "dict" else list(parked.headers.items())
        async with streams_app.parked_agent.test_context() as parked_ctx:
            await harness.deliver(parked_ctx, parked.value, key=parked.key, at=parked_at, headers=headers)

        assert harness.clean() == []
        assert dict(streams_app.parked.data) == {
            f"{sensor_id}/0/1": {
                "original_b64": base64.b64encode(package).decode(),
                "partition": 0,
                "offset": 1,
                "time_ms": round(APPEND.timestamp() * 1000),
            }
        }

        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(sensor_id), key=key)

    asyncio.run(scenario())

    assert dict(streams_app.parked.data) == {}
    [clean] = harness.clean()
    assert harness.on("clean_topic")[0].key == key
    assert str(clean.package_id) == package_id
    assert str(clean.sensor_id) == sensor_id
    # Provenance is the original package's, not the parked copy's.
    assert (clean.source_topic, clean.source_partition, clean.source_offset) == ("edge.packages.v1", 0, 1)
    assert clean.received_at == APPEND
    # Only the malformed message was a dead letter; the parked package was accounted for once.
    assert [letter.reason for letter in harness.dead_letters()] == [ReasonCode.MALFORMED_JSON]


def test_parked_packages_are_one_entry_each_replays_overwrite_and_release_keeps_their_order(
    harness: Harness,
) -> None:
    # A list per sensor outgrew Kafka's message limit after ~40 parked 1000-sample packages and crashed the
    # worker's producer on every restart; one entry per source position keeps each entry one package large.
    sensor_id = str(uuid.uuid4())
    key = sensor_id.encode()
    packages = [_package(sensor_id) for _ in range(5)]

    async def scenario() -> None:
        async with streams_app.packages_agent.test_context() as packages_ctx:
            for package in packages:
                await harness.deliver(packages_ctx, package, key=key)
        parked_copies = harness.on("parked_topic")
        async with streams_app.parked_agent.test_context() as parked_ctx:
            # Delivered out of order, and the third one twice (an at-least-once replay of the parked topic).
            for copy in [*parked_copies[::-1], parked_copies[2]]:
                await harness.deliver(parked_ctx, copy.value, key=copy.key, headers=copy.headers)
        assert sorted(streams_app.parked.data) == sorted(f"{sensor_id}/0/{offset}" for offset in range(5))
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(sensor_id), key=key)

    asyncio.run(scenario())

    assert dict(streams_app.parked.data) == {}
    assert harness.on("deadletter_topic") == []
    clean = harness.clean()
    assert [str(c.package_id) for c in clean] == [json.loads(p)["package_id"] for p in packages]
    assert [c.source_offset for c in clean] == [0, 1, 2, 3, 4]


def test_released_parked_entries_are_deleted_only_once_their_records_are_acknowledged(harness: Harness) -> None:
    # A tombstone sent before its package's clean record reached the broker could be the one that survives a
    # crash, and the package would be lost: the entries stay until every record of the release is acknowledged.
    sensor_id = str(uuid.uuid4())
    key = sensor_id.encode()
    packages = [_package(sensor_id) for _ in range(3)]

    async def scenario() -> None:
        async with streams_app.packages_agent.test_context() as packages_ctx:
            for package in packages:
                await harness.deliver(packages_ctx, package, key=key)
        async with streams_app.parked_agent.test_context() as parked_ctx:
            for copy in harness.on("parked_topic"):
                await harness.deliver(parked_ctx, copy.value, key=copy.key, headers=copy.headers)
        harness.hold_deliveries = True
        held_from = len(harness.deliveries)
        async with streams_app.metadata_agent.test_context() as metadata:
            release = asyncio.create_task(harness.deliver(metadata, _sensor(sensor_id), key=key))

            async def all_sent() -> None:
                while len(harness.clean()) < len(packages):
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(all_sent(), TIMEOUT_S)
            await asyncio.sleep(0.05)  # the handler is now waiting for the acknowledgements
            assert len(streams_app.parked.data) == len(packages), "deleted before the broker acknowledged"
            for delivery in harness.deliveries[held_from:]:
                delivery.set_result(None)
            await release

    asyncio.run(scenario())

    assert dict(streams_app.parked.data) == {}
    assert [str(c.package_id) for c in harness.clean()] == [json.loads(p)["package_id"] for p in packages]


def test_a_parked_list_left_by_an_older_worker_is_released(harness: Harness) -> None:
    sensor_id = str(uuid.uuid4())
    package = _package(sensor_id)
    streams_app.parked.data[sensor_id] = [
        {"value": package.decode(), "partition": 4, "offset": 17, "time_ms": round(APPEND.timestamp() * 1000)}
    ]

    async def scenario() -> None:
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(sensor_id), key=sensor_id.encode())

    asyncio.run(scenario())

    assert dict(streams_app.parked.data) == {}
    [clean] = harness.clean()
    assert str(clean.package_id) == json.loads(package)["package_id"]
    assert (clean.source_partition, clean.source_offset) == (4, 17)


def test_a_metadata_tombstone_retires_the_sensor_without_a_dead_letter(harness: Harness) -> None:
    key = EXAMPLE_SENSOR_ID.encode()

    async def scenario() -> None:
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(), key=key)
            assert streams_app.sensors.data.get(EXAMPLE_SENSOR_ID) is not None
            await harness.deliver(metadata, None, key=key)  # type: ignore[arg-type]
        async with streams_app.packages_agent.test_context() as packages:
            await harness.deliver(packages, _package(), key=key)

    asyncio.run(scenario())

    assert streams_app.sensors.data.get(EXAMPLE_SENSOR_ID) is None
    assert harness.on("deadletter_topic") == []
    assert harness.clean() == []
    assert len(harness.on("parked_topic")) == 1  # the retired sensor's next package waits for new metadata


def test_parked_package_whose_sensor_is_already_known_is_processed_at_once(harness: Harness) -> None:
    key = EXAMPLE_SENSOR_ID.encode()
    package = _package()
    headers = {
        "vigil-source-partition": b"3",
        "vigil-source-offset": b"42",
        "vigil-source-time-ms": str(round(APPEND.timestamp() * 1000)).encode(),
    }

    async def scenario() -> None:
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(), key=key)
        async with streams_app.parked_agent.test_context() as parked_ctx:
            await harness.deliver(parked_ctx, package, key=key, headers=headers)

    asyncio.run(scenario())

    assert harness.on("deadletter_topic") == []
    assert dict(streams_app.parked.data) == {}
    [clean] = harness.clean()
    assert str(clean.package_id) == json.loads(package)["package_id"]
    assert (clean.source_topic, clean.source_partition, clean.source_offset) == ("edge.packages.v1", 3, 42)
    assert clean.received_at == APPEND


def test_a_failing_stage_becomes_a_processing_error_and_the_agent_keeps_running(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = EXAMPLE_SENSOR_ID.encode()
    first, second = _package(), _package()
    calls = _fail_first_process(monkeypatch)

    async def scenario() -> None:
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(), key=key)
        async with streams_app.packages_agent.test_context() as packages:
            await harness.deliver(packages, first, key=key)
            # A crashed test agent would make this put raise (or never be handled, timing out).
            await harness.deliver(packages, second, key=key)

    asyncio.run(scenario())

    assert calls == [1, 2]
    [letter] = harness.dead_letters()
    assert letter.reason is ReasonCode.PROCESSING_ERROR
    assert letter.detail == "RuntimeError: stage exploded"
    assert letter.original == first
    assert letter.original_key == key
    assert (letter.source_topic, letter.source_offset) == ("edge.packages.v1", 0)
    [clean] = harness.clean()
    assert str(clean.package_id) == json.loads(second)["package_id"]
    assert clean.source_offset == 1


def test_a_failure_while_releasing_parked_packages_is_a_dead_letter_per_package(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    sensor_id = str(uuid.uuid4())
    key = sensor_id.encode()
    first, second = _package(sensor_id), _package(sensor_id)
    calls = _fail_first_process(monkeypatch)

    async def scenario() -> None:
        async with streams_app.packages_agent.test_context() as packages:
            await harness.deliver(packages, first, key=key)
            await harness.deliver(packages, second, key=key)
        async with streams_app.parked_agent.test_context() as parked_ctx:
            for parked in harness.on("parked_topic"):
                await harness.deliver(parked_ctx, parked.value, key=parked.key, headers=parked.headers)
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(sensor_id), key=key)

    asyncio.run(scenario())

    assert calls == [1, 2]
    assert dict(streams_app.parked.data) == {}
    [letter] = harness.dead_letters()
    assert letter.reason is ReasonCode.PROCESSING_ERROR
    assert letter.stage == "parked"
    assert letter.original == first
    assert (letter.source_topic, letter.source_offset) == ("edge.packages.v1", 0)
    [clean] = harness.clean()
    assert str(clean.package_id) == json.loads(second)["package_id"]
    assert clean.source_offset == 1


def test_a_processing_error_dead_letter_can_be_replayed(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    key = EXAMPLE_SENSOR_ID.encode()
    package = _package()
    _fail_first_process(monkeypatch)

    async def scenario() -> None:
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(), key=key)
        async with streams_app.packages_agent.test_context() as packages:
            await harness.deliver(packages, package, key=key)
            [letter] = harness.dead_letters()
            await harness.deliver(packages, letter.original, key=key)  # an operator re-sends it

    asyncio.run(scenario())

    assert [d.reason for d in harness.dead_letters()] == [ReasonCode.PROCESSING_ERROR]
    [clean] = harness.clean()
    assert str(clean.package_id) == json.loads(package)["package_id"]


def test_the_same_message_read_again_after_a_crash_is_not_a_duplicate_of_itself(harness: Harness) -> None:
    key = EXAMPLE_SENSOR_ID.encode()
    package = _package()

    async def scenario() -> None:
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(), key=key)
        for _ in range(2):  # a fresh context starts again at offset 0: the replay of an uncommitted message
            async with streams_app.packages_agent.test_context() as packages:
                await harness.deliver(packages, package, key=key)

    asyncio.run(scenario())

    assert harness.dead_letters() == []
    assert [c.source_offset for c in harness.clean()] == [0, 0]


def test_package_ids_past_the_horizon_leave_the_dedupe_table(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    horizon_s = 1.0
    monkeypatch.setattr(
        streams_app, "settings", streams_app.settings.model_copy(update={"streams_dedupe_horizon_s": horizon_s})
    )
    monkeypatch.setattr(streams_app, "expiry", SeenExpiry(streams_app.seen, horizon_s * 1000))
    first, second = _package(), _package()
    first_id, second_id = json.loads(first)["package_id"], json.loads(second)["package_id"]
    key = EXAMPLE_SENSOR_ID.encode()

    async def scenario() -> None:
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(), key=key)
        async with streams_app.packages_agent.test_context() as packages:
            await harness.deliver(packages, first, key=key)
            assert first_id in streams_app.seen
            await harness.deliver(packages, second, key=key, at=APPEND + timedelta(seconds=5))
            assert first_id not in streams_app.seen  # deleted while handling a later event of its partition
            assert second_id in streams_app.seen
            await harness.deliver(packages, first, key=key, at=APPEND + timedelta(seconds=6))

    asyncio.run(scenario())

    assert [str(c.package_id) for c in harness.clean()] == [first_id, second_id, first_id]
    assert harness.dead_letters() == []


def test_a_resume_of_an_active_flow_keeps_the_queued_events() -> None:
    # Faust's recovery resumes flow twice; only a resume after a suspension (a rebalance) may drop queued events.
    async def scenario() -> list[int]:
        flow = streams_app.app.flow_control
        queue = streams_app.app.FlowControlQueue(maxsize=10, clear_on_resume=True)
        was_active = flow.is_active()
        try:
            flow.suspend()
            queue.put_nowait("from a revoked partition")
            flow.resume()
            sizes = [queue.qsize()]
            queue.put_nowait("delivered after the seek")
            flow.resume()  # recovery's second resume
            sizes.append(queue.qsize())
            return sizes
        finally:
            if not was_active:
                flow.suspend()

    assert asyncio.run(scenario()) == [0, 1]
