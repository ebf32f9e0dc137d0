"""The Kafka side of the pickup: an idempotent acks=all producer that counts acknowledgements per batch."""

from __future__ import annotations

from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connectors.files.settings import FilesSettings
from contracts.topics import BY_NAME

PACKAGES_TOPIC = BY_NAME["edge.packages.v1"].name
DEADLETTER_TOPIC = BY_NAME["edge.deadletter.v1"].name


class FilesError(RuntimeError):
    """The pickup cannot proceed (Kafka unreachable, topics missing)."""


class Sink(Protocol):
    def send(self, topic: str, key: bytes | None, value: bytes) -> None: ...

    def wait(self) -> list[str]:
        """Block until everything sent since the last wait is acknowledged or failed; the failures."""
        ...

    def close(self) -> None: ...


def producer_config(settings: FilesSettings) -> dict[str, str | int | float | bool]:
    return {
        "bootstrap.servers": settings.bootstrap,
        "client.id": settings.client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.timeout.ms": int(settings.delivery_timeout_s * 1000),
        # Same partitioner as the gateway: a sensor's packages land where its metadata is (contracts/topics.py).
        "partitioner": "murmur2_random",
    }


class _Batch:
    def __init__(self) -> None:
        self.sent = self.acked = 0
        self.errors: list[str] = []

    def done(self, err: KafkaError | None, _record: Message) -> None:
        if err is None:
            self.acked += 1
        else:
            self.errors.append(str(err))


class KafkaSink:
    def __init__(self, settings: FilesSettings) -> None:
        self.timeout_s = settings.delivery_timeout_s + 10
        self._producer = Producer(producer_config(settings))
        try:
            topics = self._producer.list_topics(timeout=settings.connect_timeout_s).topics
        except KafkaException as exc:
            reason = f"Kafka at {settings.bootstrap} is unreachable ({exc}); is it running (`make up`)?"
            raise FilesError(reason) from exc
        missing = [t for t in (PACKAGES_TOPIC, DEADLETTER_TOPIC) if t not in topics]
        if missing:
            raise FilesError(f"topics {missing} do not exist on {settings.bootstrap}; `make up` creates them")
        self._batch = _Batch()

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=self._batch.done)
                break
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain, then retry
        self._batch.sent += 1
        self._producer.poll(0)

    def wait(self) -> list[str]:
        self._producer.flush(self.timeout_s)
        batch, self._batch = self._batch, _Batch()  # late callbacks of a timed-out batch cannot count for the next
        errors = list(batch.errors)
        if (missing := batch.sent - batch.acked - len(errors)) > 0:
            errors.append(f"{missing} messages not acknowledged in {self.timeout_s} s")
        return errors

    def close(self) -> None:
        self._producer.flush(self.timeout_s)
