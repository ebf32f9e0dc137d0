"""The agents of `streams/app.py` through `test_context()`: clean records, dead letters, clock skew, dedupe
and failures. Parking: `test_streams_agents_parking.py`; the harness: `streams_agents_harness.py`."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import timedelta

import pytest

import streams.app as streams_app
import streams.deliveries
from contracts import Alert, ClockSource, FlaggedSamples, QualityCode, ReasonCode
from contracts import avro as avro_codec
from streams.dedupe import SeenExpiry
from tests.unit.streams_agents_harness import (
    APPEND,
    EXAMPLE_SENSOR_ID,
    Harness,
    _fail_first_process,
    _package,
    _sensor,
)

pytestmark = pytest.mark.unit


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
    # The gateway's NTP offset (-12.5 ms in the example) is applied, whatever the send-to-append gap says.
    assert (clean.clock_source, clean.clock_offset_ms) == (ClockSource.NTP, -12.5)
    assert flagged.t_us == [json.loads(package)["samples"]["t"][9] - 12_500]
    assert clean.t_us[0] == json.loads(package)["samples"]["t"][0] - 12_500


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


def test_a_send_the_broker_fails_ends_the_worker_before_the_commit(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real exit_before_commit ends the process (os._exit): observed here instead.
    exits: list[tuple[str, str]] = []
    monkeypatch.setattr(
        streams.deliveries, "exit_before_commit", lambda topic, error: exits.append((topic, str(error)))
    )
    harness.hold_deliveries = True

    async def scenario() -> None:
        async with streams_app.metadata_agent.test_context() as metadata:
            await harness.deliver(metadata, _sensor(), key=EXAMPLE_SENSOR_ID.encode())
        async with streams_app.packages_agent.test_context() as packages:
            await harness.deliver(packages, _package(), key=EXAMPLE_SENSOR_ID.encode())
        topics = [s.topic for s in harness.sent]
        for topic, delivery in zip(topics, harness.deliveries, strict=True):
            if topic == "clean_topic":
                delivery.set_exception(RuntimeError("MessageSizeTooLargeError"))
            else:
                delivery.set_result(None)
        await asyncio.sleep(0)  # the done-callbacks run

    asyncio.run(scenario())

    assert "flagged_topic" in [s.topic for s in harness.sent]  # acknowledged sends end nothing
    assert exits == [("readings.clean.v1", "MessageSizeTooLargeError")]
