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
        self.errors: list[str] = []  # failed deliveries of messages `sent`
        self.refused: list[str] = []  # messages produce() refused: never sent, so no delivery report comes

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
        """Queue one message. A message the client refuses outright (over message.max.bytes, ...) is a failure of
        this batch that `wait` reports, like a refused delivery: the file goes again next pass, the process
        lives on to take the files after it."""
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=self._batch.done)
                break
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain, then retry
            except KafkaException as exc:
                self._batch.refused.append(f"{topic}: message of {len(value)} bytes refused: {exc}")
                return
        self._batch.sent += 1
        self._producer.poll(0)

    def wait(self) -> list[str]:
        self._producer.flush(self.timeout_s)
        batch, self._batch = self._batch, _Batch()  # late callbacks of a timed-out batch cannot count for the next
        errors = batch.refused + batch.errors
        if (missing := batch.sent - batch.acked - len(batch.errors)) > 0:
            errors.append(f"{missing} messages not acknowledged in {self.timeout_s} s")
        return errors

    def close(self) -> None:
        self._producer.flush(self.timeout_s)
