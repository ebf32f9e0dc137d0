"""One nightly run per UTC day: maintenance, then the gold tables, each day's partition replaced as a whole.

Idempotent per day: gold partitions are overwritten with `replaceWhere`, rows are
computed only from the lake (no clock in them), and a health alert is raised at
most once per machine and day (its id is derived from machine and day, and a
re-run sees `alert_raised` in the partition it is about to replace).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, Message, Producer
from pyspark.sql import functions as F

from contracts import Alert, AlertSource, AlertState, Severity
from contracts import avro as avro_codec
from infra.settings import InfraSettings
from jobs.lake import catalog, sinks, views
from jobs.lake.tables import SILVER_SENSORS, Table
from jobs.nightly.health import FEATURES, MachineScore, SensorDay, score_machines
from jobs.nightly.ledger import ledger_rows
from jobs.nightly.maintenance import is_table, maintain
from jobs.nightly.settings import NightlySettings
from jobs.nightly.stats import daily_sensor_stats
from jobs.nightly.tables import DAILY_SENSOR_STATS, GOLD, HEALTH_SCORES, PIPELINE_LEDGER

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("vigil.nightly")
_ALERT_NAMESPACE = uuid.UUID("6b1f2a5e-3c4d-4e8f-9a0b-1c2d3e4f5a6b")  # fixed: the same machine and day, the same id


@dataclass
class DayResult:
    day: date
    maintenance: list[str] = field(default_factory=list)
    sensors: int = 0
    machines: list[MachineScore] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    ledger: list[tuple[Any, ...]] = field(default_factory=list)
    seconds: float = 0.0


def _replace_day(rows: DataFrame, table: Table, root: str, day: date) -> None:
    rows.write.format("delta").mode("overwrite").option("replaceWhere", f"date = '{day.isoformat()}'").save(
        table.s3a(root)
    )


def run_day(
    spark: SparkSession,
    infra: InfraSettings,
    nightly: NightlySettings,
    day: date,
    *,
    root: str | None = None,
    maintenance: bool = True,
) -> DayResult:
    started = time.monotonic()
    root = root or nightly.root
    result = DayResult(day)
    for table in GOLD:
        sinks.ensure(spark, table, root)
    if maintenance:
        result.maintenance = maintain(spark, root, day, nightly.retention_days, nightly.vacuum_retain_hours)
    stats = daily_sensor_stats(spark, root, day)
    _replace_day(stats, DAILY_SENSOR_STATS, root, day)
    result.sensors = spark.read.format("delta").load(DAILY_SENSOR_STATS.s3a(root)).where(f"date = '{day}'").count()
    result.machines, result.alerts = _health(spark, infra, nightly, root, day)
    result.ledger = ledger_rows(spark, root, infra.kafka_bootstrap, day)
    ledger_schema = " ".join(PIPELINE_LEDGER.ddl.replace("NOT NULL", "").split())
    _replace_day(spark.createDataFrame(result.ledger, ledger_schema), PIPELINE_LEDGER, root, day)
    if root == "s3a://lake":
        for table in GOLD:
            catalog.register(infra, table)
        views.create_views(infra, views.GOLD_VIEWS)
    result.seconds = time.monotonic() - started
    return result


def _sensor_days(spark: SparkSession, root: str, day: date, window: int) -> list[SensorDay]:
    stats = (
        spark.read.format("delta")
        .load(DAILY_SENSOR_STATS.s3a(root))
        .where(F.col("date").between(F.lit(day - timedelta(days=window)), F.lit(day)))
    )
    kinds: dict[str, str | None] = {}
    if is_table(spark, SILVER_SENSORS, root):
        sensors = spark.read.format("delta").load(SILVER_SENSORS.s3a(root)).select("sensor_id", "machine_kind")
        kinds = {r.sensor_id: r.machine_kind for r in sensors.collect()}
    return [
        SensorDay(
            r.sensor_id,
            r.asset_id,
            r.site,
            r.quantity,
            kinds.get(r.sensor_id),
            r.date,
            {f: r[f] for f in FEATURES},
        )
        for r in stats.collect()
    ]


def _health(
    spark: SparkSession, infra: InfraSettings, nightly: NightlySettings, root: str, day: date
) -> tuple[list[MachineScore], list[str]]:
    days = _sensor_days(spark, root, day, nightly.trailing_days)
    today = [d for d in days if d.day == day]
    machines = score_machines(
        today,
        [d for d in days if d.day < day],
        min_history=nightly.min_history_days,
        window_days=nightly.trailing_days,
    )
    scores = spark.read.format("delta").load(HEALTH_SCORES.s3a(root))
    yesterday = {(r.site, r.asset_id): r.healthy for r in scores.where(f"date = '{day - timedelta(days=1)}'").collect()}
    raised_before = {(r.site, r.asset_id) for r in scores.where(f"date = '{day}' AND alert_raised").collect()}
    rows, alerts, to_send = [], [], []
    ranks: dict[str, int] = defaultdict(int)
    for m in machines:  # worst first: rank 1 is the least healthy machine of its site
        ranks[m.site] += 1
        rank = ranks[m.site]
        healthy = m.score >= nightly.unhealthy_below
        newly_unhealthy = not healthy and yesterday.get((m.site, m.asset_id), True)
        alert_id = uuid.uuid5(_ALERT_NAMESPACE, f"health:{m.site}:{m.asset_id}:{day.isoformat()}")
        if newly_unhealthy and (m.site, m.asset_id) not in raised_before:
            to_send.append(_alert(m, alert_id, day, nightly))
            alerts.append(f"{m.asset_id} ({m.site}): health {m.score:.1f}")
        rows.append(
            (
                m.asset_id,
                m.site,
                m.machine_kind,
                float(m.score),
                rank,
                healthy,
                m.basis,
                m.worst.sensor_id,
                m.worst.quantity,
                m.worst.worst_feature,
                float(m.deviation),
                m.rms_trend_per_day,
                m.sensors,
                bool(newly_unhealthy),
                str(alert_id) if newly_unhealthy else None,
                day,
            )
        )
    if to_send:
        # Sent before the partition that records them: a crash in between re-sends on the re-run, with the
        # same alert id (consumers can drop it), rather than losing the alert.
        _send(infra, to_send)
    schema = " ".join(HEALTH_SCORES.ddl.replace("NOT NULL", "").split())
    _replace_day(spark.createDataFrame(rows, schema), HEALTH_SCORES, root, day)
    return machines, alerts


def _alert(m: MachineScore, alert_id: uuid.UUID, day: date, nightly: NightlySettings) -> Alert:
    start = datetime.combine(day, day_time(), tzinfo=UTC)
    severity = Severity.CRITICAL if m.score < nightly.critical_below else Severity.WARNING
    return Alert(
        alert_id=alert_id,
        episode_id=alert_id,
        state=AlertState.OPEN,
        asset_id=m.asset_id,
        site=m.site,
        sensor_id=uuid.UUID(m.worst.sensor_id),
        rule="health_score",
        severity=severity,
        source=AlertSource.NIGHTLY,
        message=(
            f"health score {m.score:.1f} on {day} below {nightly.unhealthy_below:g} "
            f"(worst: {m.worst.quantity} {m.worst.worst_feature}, deviation {m.worst.deviation:.1f}, "
            f"compared with {m.basis})"
        )[:1000],
        value=m.score,
        threshold=nightly.unhealthy_below,
        window_start=start,
        window_end=start + timedelta(days=1) - timedelta(microseconds=1),
        raised_at=datetime.now(UTC),
    )


def _send(infra: InfraSettings, alerts: list[Alert]) -> None:
    # murmur2, as the stream worker partitions alerts.v1: an asset's alerts share a partition, whoever raised them.
    config = {"bootstrap.servers": infra.kafka_bootstrap, "acks": "all", "enable.idempotence": True}
    producer = Producer({**config, "partitioner": "murmur2_random"})
    failures: list[str] = []

    def done(err: KafkaError | None, _record: Message) -> None:
        # A message the broker refused leaves the queue too: flush() returning 0 does not mean it was written.
        if err is not None:
            failures.append(str(err))

    for alert in alerts:
        producer.produce("alerts.v1", key=alert.asset_id.encode(), value=avro_codec.encode(alert), on_delivery=done)
    if producer.flush(30) != 0:
        raise RuntimeError("health alerts were not acknowledged by Kafka within 30 s")
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(alerts)} health alerts refused by Kafka: {failures[:3]}")
