"""Reading back what a test produced to Kafka: end offsets, and the messages of given keys between offsets."""

from __future__ import annotations

import time
import uuid

from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, TopicPartition

from infra.topics import high_watermarks

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


def read_keyed(bootstrap: str, topic: str, start: Offsets, end: Offsets, keys: set[bytes]) -> list[tuple[bytes, bytes]]:
    """(key, value) of every message in [start, end) per partition whose key is one of `keys`.

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
                    if key is not None and key in keys:
                        assert partition == (murmur2(key) & 0x7FFFFFFF) % len(end), f"{topic}: {key!r} misplaced"
                        out.append((key, message.value() or b""))
                    if offset + 1 >= wanted[partition]:
                        del wanted[partition]
        assert not wanted, f"could not read {topic} partitions {sorted(wanted)} to their end in 60 s"
    finally:
        consumer.close()
    return out
