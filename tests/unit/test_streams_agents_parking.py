"""The agents of `streams/app.py` through `test_context()`: a package of a sensor without metadata is parked
and released, in order, by that sensor's metadata. The harness: `streams_agents_harness.py`."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

import streams.app as streams_app
from contracts import ReasonCode
from tests.unit.streams_agents_harness import (
    APPEND,
    EXAMPLE_SENSOR_ID,
    TIMEOUT_S,
    Harness,
    _fail_first_process,
    _package,
    _sensor,
)

pytestmark = pytest.mark.unit


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
            for _ in range(200):  # every turn the handler gets while its records are unacknowledged, not one moment
                await asyncio.sleep(0)
                assert not release.done()
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
