"""Kafka I/O of the gateway: register metadata, then stream packages at a target rate.

Only acknowledged messages are counted (delivery callbacks feed a `Tally`); the
producer is idempotent with acks=all, so a retried send is never written twice and a
sensor's packages keep their order on its partition (key = sensor UUID).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connectors.gateway.faults import FaultRates
from connectors.gateway.plant import PlantConfig, build_plant, sensor_descriptions
from connectors.gateway.replay import Readings, packages
from connectors.gateway.report import ClockTruth, SendReport, Tally
from connectors.gateway.settings import GatewaySettings
from connectors.gateway.simulate import Outgoing, anchored, emit
from contracts import SensorDescription
from contracts.topics import BY_NAME

PACKAGES_TOPIC = BY_NAME["edge.packages.v1"].name
METADATA_TOPIC = BY_NAME["edge.metadata.v1"].name

Stop = Literal["count", "duration", "exhausted", "interrupted"]


class GatewayError(RuntimeError):
    """The run could not proceed (Kafka unreachable, topics missing, metadata not acknowledged)."""


def producer_config(settings: GatewaySettings, bootstrap: str) -> dict[str, str | int | float | bool]:
    return {
        "bootstrap.servers": bootstrap,
        "client.id": settings.gateway_client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": settings.gateway_linger_ms,
        "compression.type": settings.gateway_compression,
        "message.timeout.ms": int(settings.gateway_delivery_timeout_s * 1000),
        # librdkafka defaults to CRC32; Vigil's keyed topics rely on Java's murmur2 so that a sensor's
        # packages and metadata share a partition number (see contracts/topics.py).
        "partitioner": "murmur2_random",
    }


def connect(settings: GatewaySettings, bootstrap: str) -> Producer:
    producer = Producer(producer_config(settings, bootstrap))
    # librdkafka would otherwise queue silently until message.timeout.ms: probe the cluster first.
    try:
        metadata = producer.list_topics(timeout=settings.gateway_connect_timeout_s)
    except KafkaException as exc:
        raise GatewayError(f"Kafka at {bootstrap} is unreachable ({exc}); is it running (`make up`)?") from exc
    missing = [t for t in (PACKAGES_TOPIC, METADATA_TOPIC) if t not in metadata.topics]
    if missing:
        raise GatewayError(f"topics {missing} do not exist on {bootstrap}; `make up` creates them")
    return producer


def _callback(tally: Tally, message: Outgoing) -> Callable[[KafkaError | None, Message], None]:
    def done(err: KafkaError | None, _record: Message) -> None:
        if err is None:
            tally.delivered(message)
        else:
            tally.error(f"{message.category} {message.reason or message.payload} key={message.key.decode()}: {err}")

    return done


def _produce(producer: Producer, topic: str, key: bytes, value: bytes, on_delivery: Any) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(0.1)  # local queue full: let deliveries drain, then retry


def register_metadata(
    producer: Producer, descriptions: Iterable[SensorDescription], tally: Tally, timeout_s: float
) -> None:
    """Send every sensor's description and wait for all acks: packages must not overtake their metadata."""
    failures: list[str] = []
    expected = 0

    def done(err: KafkaError | None, _record: Message) -> None:
        if err is None:
            tally.metadata += 1
        else:
            failures.append(str(err))

    for description in descriptions:
        _produce(producer, METADATA_TOPIC, str(description.sensor_id).encode(), description.to_wire(), done)
        expected += 1
    producer.flush(timeout_s)
    if tally.metadata != expected:
        raise GatewayError(f"only {tally.metadata} of {expected} metadata records acknowledged: {failures[:3]}")


def stream(
    producer: Producer,
    messages: Iterator[Outgoing],
    tally: Tally,
    *,
    rate: float | None,
    duration: float | None,
    count: int | None,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> Stop:
    """Send until `count` messages, `duration` seconds or the end of `messages`, whichever comes first."""
    start = clock()
    sent = 0
    stopped: Stop = "exhausted"
    try:
        while True:
            if count is not None and sent >= count:
                stopped = "count"
                break
            due = start + sent / rate if rate else clock()
            if duration is not None and due - start >= duration:
                stopped = "duration"
                break
            while (wait := due - clock()) > 0:
                producer.poll(min(wait, 0.05))  # serve delivery callbacks while pacing
            # Built only now, so sent_at is the real hand-over time.
            message = next(messages, None)
            if message is None:
                break
            _produce(producer, PACKAGES_TOPIC, message.key, message.value, _callback(tally, message))
            producer.poll(0)
            sent += 1
    except KeyboardInterrupt:
        stopped = "interrupted"
    producer.flush(timeout_s)
    return stopped


def budget(rate: float | None, duration: float | None, count: int | None) -> int:
    """The most package messages a run may send (for placing its data in time)."""
    limits = [count] if count is not None else []
    if rate and duration is not None:
        limits.append(math.ceil(rate * duration))
    if not limits:
        raise GatewayError("unbounded run: give --count, or --duration with a --rate above 0")
    return max(1, min(limits))


def run_simulation(
    settings: GatewaySettings,
    config: PlantConfig,
    rates: FaultRates,
    *,
    bootstrap: str | None = None,
    rate: float | None = 200.0,
    duration: float | None = None,
    count: int | None = None,
    horizon_s: float | None = None,
    anchor: bool = True,
) -> SendReport:
    bootstrap = bootstrap or settings.kafka_bootstrap
    now = datetime.now(UTC)
    if anchor:
        config = anchored(config, budget(rate, duration, count), now, horizon_s)
    else:
        budget(rate, duration, count)  # still refuse an unbounded run
        if horizon_s is not None:
            config = config.model_copy(update={"horizon_s": horizon_s})
    plant = build_plant(config)
    producer = connect(settings, bootstrap)
    tally = Tally()
    register_metadata(producer, sensor_descriptions(plant, now), tally, settings.gateway_delivery_timeout_s)
    started = datetime.now(UTC)
    stopped = stream(
        producer,
        emit(plant, rates),
        tally,
        rate=rate,
        duration=duration,
        count=count,
        timeout_s=settings.gateway_delivery_timeout_s + 10,
    )
    finished = datetime.now(UTC)
    return SendReport(
        mode="run",
        bootstrap=bootstrap,
        packages_topic=PACKAGES_TOPIC,
        metadata_topic=METADATA_TOPIC,
        seed=config.seed,
        started_at=started,
        finished_at=finished,
        stopped_by=stopped,
        target_rate=rate or None,
        achieved_rate=tally.packages_total / max((finished - started).total_seconds(), 1e-9),
        sensors=len(plant.sensors),
        plant_start=config.start,
        window_s=config.window_us / 1e6,
        horizon_s=config.horizon_s,
        clocks=[
            ClockTruth(
                gateway_id=g.gateway_id,
                offset_ms=g.clock.offset_ms,
                drift_ppm=g.clock.drift_ppm,
                reports_ntp=g.clock.reports_ntp,
                reference=config.start,
            )
            for g in plant.gateways
        ],
        degrading_machines=plant.degrading,
        fahrenheit_sensors=[str(s.sensor_id) for s in plant.sensors if s.unit == "degF"],
        **tally.counts(),
    )


def run_replay(
    settings: GatewaySettings,
    readings: Readings,
    *,
    gateway_id: str,
    samples_per_package: int,
    bootstrap: str | None = None,
    rate: float | None = None,
    clock_offset_ms: float | None = 0.0,
    descriptions: Iterable[SensorDescription] = (),
) -> SendReport:
    bootstrap = bootstrap or settings.kafka_bootstrap
    producer = connect(settings, bootstrap)
    tally = Tally()
    register_metadata(producer, descriptions, tally, settings.gateway_delivery_timeout_s)
    started = datetime.now(UTC)
    messages = packages(readings, samples_per_package, gateway_id, clock_offset_ms)
    stopped = stream(
        producer,
        messages,
        tally,
        rate=rate,
        duration=None,
        count=None,
        timeout_s=settings.gateway_delivery_timeout_s + 10,
    )
    finished = datetime.now(UTC)
    return SendReport(
        mode="replay",
        bootstrap=bootstrap,
        packages_topic=PACKAGES_TOPIC,
        metadata_topic=METADATA_TOPIC,
        started_at=started,
        finished_at=finished,
        stopped_by=stopped,
        target_rate=rate or None,
        achieved_rate=tally.packages_total / max((finished - started).total_seconds(), 1e-9),
        sensors=len(readings.by_sensor),
        bad_rows=readings.bad_rows,
        **tally.counts(),
    )
