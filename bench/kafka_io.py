"""Kafka and metrics I/O of the benchmark: offsets, the gateway's producer, the baseline reader, a receiver."""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

import fastavro
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

from connectors.gateway.producer import producer_config
from connectors.gateway.settings import GatewaySettings
from contracts import CleanReadingBatch
from contracts import avro as avro_codec
from infra.topics import high_watermarks

Offsets = dict[int, int]


def _consumer(bootstrap: str, group: str | None = None) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"vigil-bench-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "log_level": 4,
        }
    )


def ends(bootstrap: str, topic: str) -> Offsets:
    """High watermarks per partition: where the next message of `topic` will land."""
    consumer = _consumer(bootstrap)
    try:
        return high_watermarks(consumer, topic)
    finally:
        consumer.close()


def gateway_producer(bootstrap: str) -> Producer:
    """The gateway's own producer settings (idempotent, acks=all, lz4, linger 5 ms, murmur2_random)."""
    config = producer_config(GatewaySettings(gateway_client_id="vigil-bench"), bootstrap)
    return Producer({**config, "log_level": 4})


@dataclass
class Delivery:
    errors: list[str] = field(default_factory=list)

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.errors.append(str(err))


def produce(producer: Producer, topic: str, key: bytes, value: bytes, delivery: Delivery) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value, on_delivery=delivery)
            producer.poll(0)
            return
        except BufferError:
            producer.poll(0.05)  # local queue full: let deliveries drain, then retry


def flush(producer: Producer, delivery: Delivery, what: str) -> None:
    left = producer.flush(120)
    if left or delivery.errors:
        raise RuntimeError(f"{what}: {left} unsent, {len(delivery.errors)} failed: {delivery.errors[:3]}")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The worker's Prometheus samples, keyed by (name, sorted labels)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def record(model: type[BaseModel], value: bytes) -> dict[str, Any]:
    """An Avro record as a dict (plain fastavro: model validation would only slow the reading down)."""
    return cast(dict[str, Any], fastavro.schemaless_reader(io.BytesIO(value), avro_codec.parsed_schema(model), None))


def read_clean(bootstrap: str, since: Offsets, until: Offsets) -> dict[str, dict[str, Any]]:
    """Clean records in [since, until) by package id."""
    found: dict[str, dict[str, Any]] = {}
    for value in read_range(bootstrap, "readings.clean.v1", since, until):
        record_ = record(CleanReadingBatch, value)
        found.setdefault(str(record_["package_id"]), record_)  # first one wins, as for a downstream reader
    return found


def read_range(bootstrap: str, topic: str, since: Offsets, until: Offsets, timeout_s: float = 120) -> list[bytes]:
    consumer = _consumer(bootstrap)
    consumer.assign([TopicPartition(topic, p, o) for p, o in since.items() if until[p] > o])
    left = sum(until[p] - o for p, o in since.items())
    out: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while left > 0 and time.monotonic() < deadline:
            for msg in consumer.consume(min(left, 500), 1.0):
                offset, partition = msg.offset(), msg.partition()
                if msg.error() is None and offset is not None and partition is not None and offset < until[partition]:
                    out.append(msg.value() or b"")
                    left -= 1
        if left:
            raise RuntimeError(f"{topic}: {left} messages of the range not read within {timeout_s} s")
        return out
    finally:
        consumer.close()


def baseline(bootstrap: str, topic: str, since: Offsets, until: Offsets, timeout_s: float = 120) -> list[float]:
    """A bare consumer reads [since, until) and json-decodes every value; returns each message's done time.

    Batches are asked for exactly what is still missing, so the last `consume`
    returns as soon as the last message is in rather than waiting out a timeout.
    """
    consumer = _consumer(bootstrap)
    consumer.assign([TopicPartition(topic, p, o) for p, o in since.items() if until[p] > o])
    left = sum(until[p] - o for p, o in since.items())
    done: list[float] = []
    deadline = time.monotonic() + timeout_s
    try:
        while left > 0 and time.monotonic() < deadline:
            for msg in consumer.consume(min(left, 500), 1.0):
                if msg.error() is None:
                    json.loads(msg.value() or b"")
                    done.append(time.perf_counter())
                    left -= 1
        if left:
            raise RuntimeError(f"baseline: {left} messages not read within {timeout_s} s")
        return done
    finally:
        consumer.close()


class Receiver(threading.Thread):
    """Reads topics from given offsets in the background, stamping each message with its receive time.

    poll() (one message) rather than consume(n): consume waits for a full batch
    or its timeout, which would add up to that timeout to the measured latency.
    Values are kept raw and decoded after the run, so the receiver takes little CPU
    from the worker it measures.
    """

    def __init__(self, bootstrap: str, since: dict[str, Offsets], max_seconds: float) -> None:
        super().__init__(name="bench-receiver", daemon=True)
        self.consumer = _consumer(bootstrap)
        self.consumer.assign([TopicPartition(t, p, o) for t, offs in since.items() for p, o in offs.items()])
        self.max_seconds = max_seconds
        self.received: list[tuple[str, float, bytes]] = []  # (topic, time.time() at receipt, value)
        self.stopping = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        try:
            while not self.stopping.is_set() and time.monotonic() < deadline:
                msg = self.consumer.poll(0.05)
                if msg is not None and msg.error() is None:
                    self.received.append((msg.topic() or "", time.time(), msg.value() or b""))
        finally:
            self.consumer.close()

    def count(self, topic: str) -> int:
        return sum(1 for t, _, _ in list(self.received) if t == topic)
