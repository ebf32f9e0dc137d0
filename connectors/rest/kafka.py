"""Kafka I/O of the broker: an idempotent acks=all producer whose deliveries resolve asyncio futures.

librdkafka calls delivery callbacks from `poll()`; a daemon thread polls, and
each callback hands its result to the event loop, so a request handler can
`await` Kafka's acknowledgement without blocking other requests.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from prometheus_client import Counter

MAX_MESSAGE_BYTES: Final = 1_000_000
"""Largest message (value, key, headers and record overhead) the broker produces: librdkafka's default
`message.max.bytes`, set explicitly. It stays below the ingest topics' max.message.bytes
(contracts.topics.MAX_INPUT_BYTES; a unit test checks it), so a message librdkafka takes also fits the record
batch Kafka checks against the topic's limit."""
# librdkafka's RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD: the varints and attributes byte around a record.
_RECORD_OVERHEAD: Final = 36

log = logging.getLogger(__name__)
AUDIT_LOST = Counter("vigil_rest_audit_lost", "fire-and-forget messages (audit events) lost, by topic", ["topic"])


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]]


class ProduceError(RuntimeError):
    """Kafka did not acknowledge a message (the client gets 503 and may retry: the stream drops duplicates).

    `code` is Kafka's error name when it gave one (e.g. MSG_SIZE_TOO_LARGE). `queued` is set when librdkafka
    refused a message before queueing it: how many earlier messages of the request it had already taken (they
    will be written); None when the refusal came with Kafka's answer or the wait timed out.
    """

    def __init__(self, message: str, code: str | None = None, queued: int | None = None) -> None:
        super().__init__(message)
        self.code, self.queued = code, queued


def _lost(topic: str, why: str) -> None:
    AUDIT_LOST.labels(topic).inc()
    log.error("a message to %s was lost: %s", topic, why)


def _varint_size(n: int) -> int:
    zigzag = n << 1 if n >= 0 else (-n << 1) - 1
    size = 1
    while zigzag >= 0x80:
        zigzag >>= 7
        size += 1
    return size


def wire_size(message: Outgoing) -> int:
    """The size librdkafka checks against `message.max.bytes` when `produce()` is called (rd_kafka_msg_new0)."""
    key = len(message.key or b"")
    headers = sum(
        _varint_size(len(name.encode())) + len(name.encode()) + _varint_size(len(value)) + len(value)
        for name, value in message.headers
    )
    return _RECORD_OVERHEAD + key + len(message.value) + headers


def producer_config(bootstrap: str, client_id: str) -> dict[str, str | int | bool]:
    """The broker's producer: idempotent, acks=all (a 2xx means Kafka has it), gateway-compatible partitioning."""
    return {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "compression.type": "lz4",
        "message.timeout.ms": 30_000,
        # Same partitioner as the gateways and Kafka's Java client (see contracts/topics.py).
        "partitioner": "murmur2_random",
        "message.max.bytes": MAX_MESSAGE_BYTES,
    }


class AsyncProducer:
    def __init__(self, bootstrap: str, client_id: str = "vigil-rest") -> None:
        self._producer = Producer(producer_config(bootstrap, client_id))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="rest-kafka-poll", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def topics(self, timeout: float = 10.0) -> set[str]:
        return set(self._producer.list_topics(timeout=timeout).topics)

    async def send(self, messages: Sequence[Outgoing], timeout: float) -> list[tuple[int, int]]:
        """Produce `messages` and wait until Kafka acknowledged every one: (partition, offset) of each."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[tuple[int, int]]] = []
        for index, message in enumerate(messages):
            future: asyncio.Future[tuple[int, int]] = loop.create_future()

            def done(err: KafkaError | None, record: Message, future: asyncio.Future[tuple[int, int]] = future) -> None:
                loop.call_soon_threadsafe(_settle, future, err, record)

            while True:
                try:
                    self._producer.produce(
                        message.topic,
                        key=message.key,
                        value=message.value,
                        headers=list(message.headers),
                        on_delivery=done,
                    )
                    break
                except BufferError:
                    await asyncio.sleep(0.01)  # the local queue is full: let the poll thread drain it
                except KafkaException as exc:  # refused before queueing (too large, fatal producer state, ...)
                    for queued in futures:
                        queued.cancel()  # nobody awaits them any more; _settle skips a cancelled future
                    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                    raise ProduceError(
                        f"Kafka refused message {index}: {error.str() if error else exc}",
                        error.name() if error else None,
                        queued=index,
                    ) from exc
            futures.append(future)
        try:
            return list(await asyncio.wait_for(asyncio.gather(*futures), timeout))
        except TimeoutError as exc:
            raise ProduceError(f"Kafka did not acknowledge within {timeout:g} s") from exc

    def send_nowait(self, message: Outgoing) -> None:
        """Fire and forget (audit events): never blocks a request for long, never fails it. A message Kafka
        refuses, or one the full local queue cannot take, is logged and counted (vigil_rest_audit_lost_total)."""

        def done(err: KafkaError | None, _record: Message) -> None:
            if err is not None:
                _lost(message.topic, err.str())

        for attempt in range(2):
            try:
                self._producer.produce(
                    message.topic, key=message.key, value=message.value, headers=list(message.headers), on_delivery=done
                )
                return
            except BufferError:
                if attempt == 0:
                    self._producer.poll(0.5)  # let the poll thread's deliveries drain the queue once
            except KafkaException as exc:
                _lost(message.topic, str(exc))
                return
        _lost(message.topic, "the producer's local queue is full")

    def close(self, timeout: float = 10.0) -> int:
        """Flush what is pending; the number of messages still undelivered."""
        remaining = int(self._producer.flush(timeout))
        self._stop.set()
        self._thread.join(timeout=2)
        return remaining


def _settle(future: asyncio.Future[tuple[int, int]], err: KafkaError | None, record: Message) -> None:
    if future.done():
        return
    if err is not None:
        future.set_exception(ProduceError(f"Kafka refused the message: {err.str()}", err.name()))
    else:
        future.set_result((record.partition() or 0, record.offset() or 0))
