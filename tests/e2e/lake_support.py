"""What the end-to-end tests share: Kafka offsets and records, bounded waits on Trino."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import Consumer, TopicPartition
from pydantic import BaseModel

from contracts import avro as avro_codec
from infra.settings import InfraSettings
from jobs.lake.catalog import connect
from tests import kafka_keyed

M = TypeVar("M", bound=BaseModel)
Offsets = dict[int, int]


def _consumer(settings: InfraSettings) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": "e2e-reader",
            "enable.auto.commit": False,
            "log_level": 4,
        }
    )


def ends(settings: InfraSettings, topic: str) -> Offsets:
    return kafka_keyed.ends(settings.kafka_bootstrap, topic)


def read(settings: InfraSettings, topic: str, since: Offsets, until: Offsets) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of every message in [since, until) per partition."""
    consumer = _consumer(settings)
    wanted = {p: until[p] - since.get(p, 0) for p in until if until[p] > since.get(p, 0)}
    consumer.assign([TopicPartition(topic, p, since.get(p, 0)) for p in wanted])
    out: list[tuple[int, int, bytes]] = []
    deadline = time.monotonic() + 120
    try:
        while sum(wanted.values()) > 0 and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            p, offset = message.partition(), message.offset()
            if p is not None and offset is not None and offset < until[p]:
                out.append((p, offset, message.value() or b""))
                wanted[p] -= 1
    finally:
        consumer.close()
    assert sum(wanted.values()) == 0, f"could not read all of {topic} in time: {wanted} left"
    return out


def decode_all(model: type[M], messages: list[tuple[int, int, bytes]]) -> list[M]:
    return [avro_codec.decode(model, value) for _p, _o, value in messages]


def query(settings: InfraSettings, sql: str) -> list[list[Any]]:
    with connect(settings, user="vigil-e2e") as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        rows: list[list[Any]] = cursor.fetchall()
        return rows


def wait_for(settings: InfraSettings, sql: str, expected: Any, timeout_s: float = 420.0) -> Any:
    """Poll `sql` (one row) until it equals `expected` or the time is up; return the last answer."""
    deadline = time.monotonic() + timeout_s
    got: Any = None
    while time.monotonic() < deadline:
        got = query(settings, sql)[0]
        if got == expected:
            return got
        time.sleep(3.0)
    return got


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(2.0)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
