"""Reading back what a test produced to Kafka (end offsets, the messages of given keys between offsets), and
making the real broker refuse writes to a topic for a while."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from contracts.topics import BY_NAME
from infra.topics import high_watermarks

REFUSED_OVER_BYTES = 64  # smaller than any package or dead letter: the broker answers MSG_SIZE_TOO_LARGE

Offsets = dict[int, int]


def _consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"vigil-test-{uuid.uuid4()}", "enable.auto.commit": False}
    )


def ends(bootstrap: str, topic: str) -> Offsets:
    consumer = _consumer(bootstrap)
    try:
        return high_watermarks(consumer, topic)
    finally:
        consumer.close()


def read_keyed(
    bootstrap: str, topic: str, start: Offsets, end: Offsets, keys: set[bytes] | None
) -> list[tuple[bytes, bytes]]:
    """(key, value) of every message in [start, end) per partition whose key is one of `keys` (None: every one).

    Also checks each one sits on the partition Java's murmur2 gives its key: the stream
    joins packages with metadata per partition (contracts/topics.py).
    """
    consumer = _consumer(bootstrap)
    wanted = {p: end[p] for p in end if end[p] > start.get(p, 0)}
    out: list[tuple[bytes, bytes]] = []
    try:
        consumer.assign([TopicPartition(topic, p, start.get(p, 0)) for p in wanted])
        deadline = time.monotonic() + 60
        while wanted and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1):
                assert message.error() is None, message.error()
                partition, offset, key = message.partition(), message.offset(), message.key()
                assert partition is not None
                assert offset is not None
                if partition in wanted and offset < wanted[partition]:
                    if keys is None:
                        out.append((key or b"", message.value() or b""))
                    elif key is not None and key in keys:
                        assert partition == (murmur2(key) & 0x7FFFFFFF) % len(end), f"{topic}: {key!r} misplaced"
                        out.append((key, message.value() or b""))
                    if offset + 1 >= wanted[partition]:
                        del wanted[partition]
        assert not wanted, f"could not read {topic} partitions {sorted(wanted)} to their end in 60 s"
    finally:
        consumer.close()
    return out


def _set_max_message_bytes(admin: AdminClient, topic: str, value: int | None) -> None:
    """Set the topic's max.message.bytes, or (None) drop its override for the broker's default."""
    op = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    entry = ConfigEntry("max.message.bytes", str(value or ""), incremental_operation=op)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
    admin.incremental_alter_configs([resource])[resource].result(10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the controller accepted it; wait until the broker applies it too
        described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
        now = next(iter(described.values())).result(10)["max.message.bytes"].value
        applied = now == str(value) if value is not None else now != str(REFUSED_OVER_BYTES)
        if applied:
            return
        time.sleep(0.2)
    raise AssertionError(f"{topic}: max.message.bytes still not {value or 'the default'} after 15 s")


@contextmanager
def refusing_writes(bootstrap: str, topic: str) -> Iterator[None]:
    """The real broker refuses every message to `topic` (its max.message.bytes lowered to 64) inside the block,
    then takes them again with the limit `make up` set from contracts/topics.py (or the broker's default).

    A failure the broker itself reports, for tests of what a producer does with unacknowledged messages.
    Integration tests run one at a time, so no other test's writes to `topic` are refused meanwhile.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    _set_max_message_bytes(admin, topic, REFUSED_OVER_BYTES)
    try:
        yield
    finally:
        _set_max_message_bytes(admin, topic, BY_NAME[topic].max_message_bytes)
