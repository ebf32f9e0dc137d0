"""A harness for the agents of `streams/app.py`, driven through Faust's own `Agent.test_context()`.

No broker is involved: `test_context()` feeds each event through an in-memory channel (partition 0,
offsets counting from 0), and what the agents send to our output topics is recorded by replacing
the `send` of those topic objects. Table changelog writes only land in the buffer of a producer that
is never started, and a guard fails the test if anything opens a socket. The same agents against a
real Kafka are exercised by `tests/integration/test_streams_pipeline.py`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

import streams.app as streams_app
from contracts import CleanReadingBatch, DeadLetter
from contracts import avro as avro_codec
from streams.pipeline import process

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


def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The `harness` fixture (tests/unit/conftest.py): sends recorded, sockets refused, tables emptied."""
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

    _reset_state()
    yield h
    _reset_state()


def _reset_state() -> None:
    # The tables and caches are module-level and keep their in-memory state between tests.
    for table in TABLES:
        getattr(streams_app, table).data.clear()
    streams_app.sensor_states.forget()
    streams_app.clocks.forget()
    streams_app.clock_gate.forget()
    streams_app.expiry.forget()
