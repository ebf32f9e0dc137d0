"""The Faust app: topics, tables and the four agents that wire the pure stages to Kafka.

Processing guarantee: at-least-once with agent concurrency 1 (Faust's
exactly-once mode has open duplicate/loss bugs, see DESIGN.md). Offsets are
committed only after an event's sends were handed to the producer, and Faust
flushes the producer (every send acknowledged) before it commits, so a crash
replays, never skips; replays are absorbed by the dedupe table downstream of
validation and by package-id dedupe in the lake.

The three input topics are keyed by sensor UUID with the same partition count
and partitioner, so each agent's table writes for one sensor land in the same
changelog partition whichever topic the event came from. State of a gateway,
whose sensors span partitions, is kept per partition, and its clock-skew rule
runs on an internal topic keyed by gateway (`clock_agent`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import faust
from faust.types import EventT, RecordMetadata

from contracts import MAX_OUTPUT_BYTES, ClockSource, DeadLetter, EdgePackage, ReasonCode, SensorDescription
from contracts import avro as avro_codec
from infra.cli_main import exit_on_bad_settings
from streams import metrics, parking
from streams.alerts import Episode, Subject, evaluate_clock, load_rules
from streams.clock_reports import ClockReport, ReportGate
from streams.dedupe import SeenExpiry
from streams.deliveries import watch
from streams.enrich import UnknownUnitError, profile
from streams.errors import Rejection
from streams.faust_fixes import resume_without_dropping, settle_deliveries_before_commit
from streams.pipeline import Source, process
from streams.runtime import report_lag_every, run_worker
from streams.settings import StreamSettings
from streams.state import (
    Checkpointed,
    sensor_state_from_json,
    sensor_state_to_json,
    skew_window_from_json,
    skew_window_to_json,
)
from streams.validate import validate

log = logging.getLogger(__name__)
Delivery = Awaitable[RecordMetadata]  # what Topic.send returns: completes once the broker acknowledged the record
with exit_on_bad_settings():  # a refused VIGIL_STREAMS_* value: its name and exit 2, not a traceback
    settings = StreamSettings()
rules = load_rules(settings.streams_rules)  # validated at start: a bad rules file stops the worker here

settings.streams_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the version folder inside it
app = faust.App(
    settings.streams_app_id,
    broker=f"kafka://{settings.kafka_bootstrap}",
    store="memory://",  # state is rebuilt from the changelog topics on start
    processing_guarantee="at_least_once",
    topic_partitions=6,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    web_enabled=False,  # metrics are served by prometheus-client instead
    table_standby_replicas=0,
    # aiokafka fetches per partition and waits for a whole response before the next: with 1 MiB (the default)
    # a worker reading 25 KB packages while producing its outputs spent most of its time idle (bench/README.md).
    consumer_max_fetch_size=settings.streams_fetch_max_bytes,
    # aiokafka refuses to send more than 1 MB (its default) and Faust's producer crashes on that: a dead letter
    # or a parked table entry of a 1 MiB package is larger. Every topic we write allows MAX_OUTPUT_BYTES.
    producer_max_request_size=MAX_OUTPUT_BYTES,
    datadir=str(settings.streams_dir),
)


resume_without_dropping(app.flow_control)  # streams/faust_fixes.py
settle_deliveries_before_commit(app.transport.Consumer)  # with _send below: a failed send is never committed

_RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
packages_topic = app.topic("edge.packages.v1", **_RAW)
metadata_topic = app.topic("edge.metadata.v1", **_RAW)
parked_topic = app.topic("edge.parked.v1", **_RAW)
deadletter_topic = app.topic("edge.deadletter.v1", **_RAW)
clean_topic = app.topic("readings.clean.v1", **_RAW)
flagged_topic = app.topic("readings.flagged.v1", **_RAW)
alerts_topic = app.topic("alerts.v1", **_RAW)

seen = app.Table("seen-packages", default=None, help="package id -> first acceptance (broker ms, partition, offset)")
sensors = app.Table("sensor-metadata", default=None, help="sensor id -> SensorDescription JSON")
parked = app.Table(
    "parked-packages", default=None, help="sensor id/partition/offset -> a parked package awaiting metadata"
)
sensor_state = app.Table("sensor-state", default=None, help="sensor id -> quality tail and alert episodes")
gateway_clocks = app.Table("gateway-clocks", default=None, help="gateway id/partition -> skew window")
# A gateway's sensors hash to every partition, so its packages reach every worker. Each partition keeps its own
# skew window (keyed gateway/partition: it moves with the partition) and reports its offset for the gateway to
# this internal topic, keyed by gateway: the one worker owning the gateway's partition here evaluates the
# clock-skew rule, so an episode is one open and one close however many workers there are.
clock_reports_topic = app.topic(f"{settings.streams_app_id}-clock-reports", **_RAW)
clock_episodes = app.Table("gateway-clock-episodes", default=None, help="gateway id -> clock-skew alert episode")
clock_gate = ReportGate(settings.streams_clock_report_s)  # streams/clock_reports.py
metrics.PARKED_WAITING.set_function(lambda: len(parked.data))
expiry = SeenExpiry(seen, settings.streams_dedupe_horizon_s * 1000)  # keeps `seen` bounded (streams/dedupe.py)
# Parsed in memory, checkpointed to the tables above at most every VIGIL_STREAMS_STATE_CHECKPOINT_S per key and
# whenever an alert changes an episode (streams/state.py, Checkpointed).
sensor_states = Checkpointed(
    sensor_state, sensor_state_from_json, sensor_state_to_json, settings.streams_state_checkpoint_s
)
clocks = Checkpointed(gateway_clocks, skew_window_from_json, skew_window_to_json, settings.streams_state_checkpoint_s)


@app.on_partitions_revoked.connect
def _on_revoked(_app: Any, /, *_args: Any, signal: Any, **_kwargs: Any) -> None:
    # Keys of revoked partitions may move to another worker; after the rebalance the recovered tables are the truth.
    sensor_states.forget()
    clocks.forget()
    clock_gate.forget()
    expiry.forget()


async def _send(topic: faust.TopicT, *, key: bytes | None, value: bytes, headers: Any = None) -> Delivery:
    """`topic.send`, its delivery watched: a failure ends the worker before the commit (streams/deliveries.py)."""
    delivery = await topic.send(key=key, value=value, headers=headers)
    watch(delivery, topic.get_topic_name())
    return delivery


def _source(event: EventT[bytes]) -> Source:
    message = event.message
    return Source(message.topic, message.partition, message.offset, datetime.fromtimestamp(message.timestamp, tz=UTC))


async def _dead_letter(event: EventT[bytes], rejection: Rejection, package: EdgePackage | None = None) -> None:
    await _reject(event.message.value or b"", event.message.key, _source(event), rejection, package)


async def _reject(
    original: bytes, key: bytes | None, source: Source, rejection: Rejection, package: EdgePackage | None = None
) -> Delivery:
    record = DeadLetter(
        reason=rejection.reason,
        field=rejection.field,
        detail=rejection.detail,
        stage=rejection.stage,
        original=original,
        original_key=key,
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        source_timestamp=source.append_time,
        rejected_at=datetime.now(UTC),
        package_id=package.package_id if package else None,
        gateway_id=package.gateway_id if package else None,
    )
    delivery = await _send(deadletter_topic, key=key, value=avro_codec.encode(record))
    metrics.DEAD_LETTERS.labels(rejection.reason.value).inc()
    metrics.MESSAGES_OUT.labels(deadletter_topic.get_topic_name()).inc()
    return delivery


async def _clock(package: EdgePackage, source: Source) -> tuple[float, ClockSource]:
    """Observe the send-to-append gap, choose the offset to apply, and report it for the clock-skew rule."""
    key = f"{package.gateway_id}/{source.partition}"
    append_ms = source.append_time.timestamp() * 1000
    window = clocks.get(key).observe(append_ms, append_ms - package.sent_at.timestamp() * 1000)
    estimate = window.estimate(append_ms) if package.clock_offset_ms is None else None
    if package.clock_offset_ms is not None:
        offset_ms, clock_source = package.clock_offset_ms, ClockSource.NTP
    elif estimate is not None:
        offset_ms, clock_source = estimate, ClockSource.ESTIMATED
    else:
        offset_ms, clock_source = 0.0, ClockSource.NONE
    clocks.put(key, window)
    metrics.CLOCK_OFFSET.labels(package.gateway_id, clock_source.value).set(offset_ms)
    await _report_clock(key, package, offset_ms)
    return offset_ms, clock_source


async def _report_clock(key: str, package: EdgePackage, offset_ms: float) -> None:
    """Send the offset to the gateway's clock agent when the gate says a report is due (streams/clock_reports.py)."""
    rule = rules.clock_skew
    if rule.enabled and clock_gate.due(key, abs(offset_ms) > rule.max_abs_offset_ms, time.monotonic()):
        window = (round(package.window.start.timestamp() * 1e6), round(package.window.end.timestamp() * 1e6))
        await _send(
            clock_reports_topic, key=package.gateway_id.encode(), value=ClockReport(offset_ms, window).to_bytes()
        )


async def handle_clock_report(event: EventT[bytes]) -> None:
    """The clock-skew rule for one gateway, on the offsets its partitions report."""
    gateway = (event.message.key or b"").decode()
    report = ClockReport.from_bytes(event.message.value or b"")
    episode = Episode(**(clock_episodes.get(gateway) or {}))
    subject = Subject(gateway, None, None, gateway)
    alert, after = evaluate_clock(
        rules, report.offset_ms, episode, subject=subject, window=report.window_us, now=datetime.now(UTC)
    )
    if after != episode:
        clock_episodes[gateway] = asdict(after)
    if alert is not None:
        await _send(alerts_topic, key=alert.asset_id.encode(), value=avro_codec.encode(alert))
        metrics.ALERTS.labels(alert.rule, alert.state.value).inc()


@lru_cache(maxsize=4096)
def _parse_sensor(meta_json: str) -> SensorDescription:
    # The table holds JSON; parsing it once per metadata version, not once per package, keeps it off the hot path.
    return SensorDescription.model_validate_json(meta_json)


async def _process(package: EdgePackage, meta_json: str, source: Source) -> list[Delivery]:
    """Clock, quality, enrich, alerts for a package whose sensor is known; publish the results.

    Returns the sends' deliveries, which complete when the broker has acknowledged each record.
    """
    started = time.perf_counter()
    sensor = _parse_sensor(meta_json)
    offset_ms, clock_source = await _clock(package, source)
    key = str(package.sensor_id)
    result = process(
        package,
        sensor,
        source,
        clock_offset_ms=offset_ms,
        clock_source=clock_source,
        state=sensor_states.get(key),
        rules=rules,
        now=datetime.now(UTC),
    )
    sensor_states.put(key, result.state, now=bool(result.alerts))
    deliveries = [await _send(clean_topic, key=key.encode(), value=result.encode_clean())]
    metrics.MESSAGES_OUT.labels(clean_topic.get_topic_name()).inc()
    if (flagged := result.encode_flagged()) is not None:
        deliveries.append(await _send(flagged_topic, key=key.encode(), value=flagged))
        metrics.MESSAGES_OUT.labels(flagged_topic.get_topic_name()).inc()
    for code, count in result.quality_counts.items():
        metrics.SAMPLES.labels(code).inc(count)
    metrics.MISSING.inc(result.clean_fields["missing_samples"])
    for alert in result.alerts:
        deliveries.append(await _send(alerts_topic, key=alert.asset_id.encode(), value=avro_codec.encode(alert)))
        metrics.ALERTS.labels(alert.rule, alert.state.value).inc()
    metrics.STAGE_SECONDS.labels("process").observe(time.perf_counter() - started)
    return deliveries


async def _guarded(event: EventT[bytes], handler: Callable[[EventT[bytes]], Awaitable[None]]) -> None:
    """Run one event's handler; an unexpected failure becomes a dead letter, never a crashed agent."""
    metrics.MESSAGES_IN.labels(event.message.topic).inc()
    try:
        await handler(event)
    except Exception as exc:
        log.exception("stage failed on %s[%s]@%s", event.message.topic, event.message.partition, event.message.offset)
        detail = f"{type(exc).__name__}: {exc}"[:1000]
        await _dead_letter(event, Rejection(ReasonCode.PROCESSING_ERROR, detail, None, event.message.topic))


@app.agent(packages_topic, concurrency=1)
async def packages_agent(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        await _guarded(event, handle_package)


@app.agent(parked_topic, concurrency=1)
async def parked_agent(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        await _guarded(event, handle_parked)


@app.agent(metadata_topic, concurrency=1)
async def metadata_agent(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        await _guarded(event, handle_metadata)


@app.agent(clock_reports_topic, concurrency=1)
async def clock_agent(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        await _guarded(event, handle_clock_report)


async def handle_package(event: EventT[bytes]) -> None:
    """validate -> dedupe -> (park | process)."""
    source = _source(event)
    started = time.perf_counter()
    checked = validate(
        event.message.value,
        source.append_time,
        max_bytes=settings.streams_max_message_bytes,
        future_tolerance=timedelta(seconds=settings.streams_future_tolerance_s),
    )
    metrics.STAGE_SECONDS.labels("validate").observe(time.perf_counter() - started)
    if isinstance(checked, Rejection):
        await _dead_letter(event, checked)
        return
    if _is_duplicate(checked, source):
        metrics.DUPLICATES.inc()
        await _dead_letter(
            event, Rejection(ReasonCode.DUPLICATE, "package id already accepted", "package_id", "dedupe"), checked
        )
        return
    meta = sensors.get(str(checked.sensor_id))
    if meta is None:
        await _park(event, source)
        return
    try:
        await _process(checked, meta, source)
    except Exception:
        _forget(checked)  # a processing_error dead letter must stay replayable
        raise


def _is_duplicate(package: EdgePackage, source: Source) -> bool:
    """True if another message already delivered this package id within the horizon.

    The first acceptance is remembered with its source offset: the same message
    read again after a crash (at-least-once replay) is not a duplicate of
    itself, so a crash between the table write and the clean record's send
    cannot lose the package.
    """
    key = str(package.package_id)
    first = seen.get(key)
    now_ms = source.append_time.timestamp() * 1000
    if (
        first is not None
        and now_ms - first["ms"] < settings.streams_dedupe_horizon_s * 1000
        and (first["partition"], first["offset"]) != (source.partition, source.offset)
    ):
        return True
    expiry.accepted(source.partition, now_ms, key)
    seen[key] = {"ms": now_ms, "partition": source.partition, "offset": source.offset}
    if expired := expiry.purge(source.partition, now_ms):
        metrics.DEDUPE_EXPIRED.inc(expired)
    return False


def _forget(package: EdgePackage) -> None:
    key = str(package.package_id)
    if seen.get(key) is not None:
        del seen[key]


async def _park(event: EventT[bytes], source: Source) -> None:
    await _send(parked_topic, key=event.message.key, value=event.message.value or b"", headers=parking.headers(source))
    metrics.PARKED.inc()
    metrics.MESSAGES_OUT.labels(parked_topic.get_topic_name()).inc()


async def handle_parked(event: EventT[bytes]) -> None:
    """A parked package is processed as soon as its sensor is known; until then it waits in a table."""
    try:
        package = EdgePackage.from_wire(event.message.value or b"")
        source = parking.source_of(event.message.headers or [], packages_topic.get_topic_name())
    except (ValueError, KeyError) as exc:  # not something this worker parked
        await _dead_letter(
            event, Rejection(ReasonCode.SCHEMA_VIOLATION, f"not a parked package: {exc}"[:1000], None, "parked")
        )
        return
    key = str(package.sensor_id)
    meta = sensors.get(key)
    if meta is None:
        table_key, waiting = parking.entry(key, event.message.value or b"", source)
        parked[table_key] = waiting
        return
    await _process(package, meta, source)
    metrics.UNPARKED.inc()


async def handle_metadata(event: EventT[bytes]) -> None:
    """Keep the latest metadata per sensor; release the sensor's parked packages."""
    raw = event.message.value
    if raw is None:  # a tombstone retires the sensor: its later packages wait for new metadata
        retired = (event.message.key or b"").decode(errors="replace")
        if sensors.get(retired) is not None:
            del sensors[retired]
        return
    try:
        sensor = SensorDescription.from_wire(raw)
        profile(sensor)  # the unit must be convertible, or nothing of this sensor can be enriched
    except (ValueError, UnknownUnitError) as exc:
        await _dead_letter(event, Rejection(ReasonCode.SCHEMA_VIOLATION, str(exc)[:500], None, "metadata"))
        return
    key = str(sensor.sensor_id)
    meta = sensor.model_dump_json(by_alias=True)
    sensors[key] = meta
    topic = packages_topic.get_topic_name()
    legacy = parking.legacy(parked.get(key), key, topic)
    released = [*legacy, *parking.waiting(parked.items(), key, topic)]
    deliveries: list[Delivery] = []
    for item in released:
        try:
            deliveries += await _process(EdgePackage.from_wire(item.original), meta, item.source)
        except Exception as exc:
            log.exception("processing a released parked package failed")
            failure = Rejection(ReasonCode.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}"[:1000], None, "parked")
            deliveries.append(await _reject(item.original, key.encode(), item.source, failure))
        else:
            metrics.UNPARKED.inc()
    # The entries go only once the broker has acknowledged every clean record and dead letter of the release.
    # Their tombstones and those records travel in different partitions, and a partition with a batch in flight
    # holds its next one back: deleted at once, a tombstone could be written before its package's clean record,
    # and a crash between the two would lose the package. Now a crash leaves the entries, and the replayed
    # metadata event releases them again (at-least-once: the lake drops the repeats by package id).
    await asyncio.gather(*deliveries)
    for item in released:
        if item.key != key:
            del parked[item.key]
    if legacy:
        del parked[key]


report_lag_every(app, (t.get_topic_name() for t in (packages_topic, metadata_topic, parked_topic, clock_reports_topic)))


def main() -> None:
    run_worker(app, settings, internal_topics=[clock_reports_topic.get_topic_name()])


if __name__ == "__main__":
    main()
