"""Every declared topic exists with its declared config and carries a message end to end."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from contracts.topics import TOPICS, TopicSpec
from infra import topics
from infra.settings import InfraSettings

pytestmark = pytest.mark.integration


def test_topics_have_declared_config(platform: InfraSettings) -> None:
    described = topics.describe(platform)
    for spec in TOPICS:
        assert spec.name in described, f"{spec.name} missing"
        expected: dict[str, str | int] = {"partitions": spec.partitions, **spec.kafka_config()}
        assert described[spec.name] == expected


def test_ensure_topics_is_idempotent(platform: InfraSettings) -> None:
    before = topics.describe(platform)
    topics.ensure_topics(platform)
    assert topics.describe(platform) == before


@pytest.mark.parametrize("spec", TOPICS, ids=lambda s: s.name)
def test_round_trip(platform: InfraSettings, spec: TopicSpec) -> None:
    key = str(uuid.uuid4()).encode()
    value = f"round-trip {uuid.uuid4()}".encode()
    producer = Producer({"bootstrap.servers": platform.kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    delivered: list[tuple[int, int]] = []

    def on_delivery(err: object, msg: object) -> None:
        assert err is None, err
        delivered.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    producer.produce(spec.name, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    [(partition, offset)] = delivered

    consumer = Consumer(
        {"bootstrap.servers": platform.kafka_bootstrap, "group.id": f"test-{uuid.uuid4()}", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(spec.name, partition, offset)])
        message = consumer.poll(30)
        assert message is not None
        assert message.error() is None
        assert (message.key(), message.value()) == (key, value)
    finally:
        consumer.close()
