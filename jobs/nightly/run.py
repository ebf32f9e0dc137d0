"""One nightly run per UTC day: maintenance, then the gold tables, each day's partition replaced as a whole.

Idempotent per day: gold partitions are overwritten with `replaceWhere`, rows are
computed only from the lake (no clock in them), and a health alert is sent at
most once per machine, day and state (its id is derived from them, and a re-run
sees the ids recorded in the partition it is about to replace).
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
from pyspark.sql import Window
from pyspark.sql import functions as F

from contracts import Alert, AlertSource, AlertState, Severity
from contracts import avro as avro_codec
from infra.settings import InfraSettings
from jobs.lake import catalog, sinks, views
from jobs.lake.tables import SILVER_SENSORS, Table, trino_root
from jobs.nightly.episodes import Change, LastDay, Machine, next_day
from jobs.nightly.health import FEATURES, MachineScore, SensorDay, healthy_history, score_machines
from jobs.nightly.ledger import ledger_rows
from jobs.nightly.maintenance import is_table, maintain
from jobs.nightly.settings import NightlySettings
from jobs.nightly.stats import daily_sensor_stats
from jobs.nightly.tables import DAILY_SENSOR_STATS, GOLD, HEALTH_SCORES, PIPELINE_LEDGER

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("vigil.nightly")


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
    # mergeSchema: a column added to a gold table since it was created is added to it (older rows read null).
    (
        rows.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"date = '{day.isoformat()}'")
        .option("mergeSchema", "true")
        .save(table.s3a(root))
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
    if nightly.register_in_trino and root == nightly.root:  # a root of a test's own stays out of the catalog
        trino_location = trino_root(root)
        for table in GOLD:
            if catalog.register(infra, table, trino_location):
                log.info("registered %s in Trino at %s", table.qualified, table.s3(trino_location))
        views.create_views(infra, views.GOLD_VIEWS)
    result.seconds = time.monotonic() - started
    return result


def _sensor_days(spark: SparkSession, root: str, day: date, window: int) -> list[SensorDay]:
    stats = (
        spark.read.format("delta")
        .load(DAILY_SENSOR_STATS.s3a(root))
        .where(F.col("date").between(F.lit(day - timedelta(days=window)), F.lit(day)))
        # A sensor with no clean sample that day (all flagged) has no features: it is no evidence of health, and
        # would lower its machine's mean deviation as if it were (its quality shows in daily_sensor_stats).
        .where(F.col("samples") > 0)
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
    scores = spark.read.format("delta").load(HEALTH_SCORES.s3a(root))
    window = F.col("date").between(F.lit(day - timedelta(days=nightly.trailing_days)), F.lit(day - timedelta(days=1)))
    unhealthy = {(r.site, r.asset_id, r.date) for r in scores.where(window).where("NOT healthy").collect()}
    machines = score_machines(
        today,
        healthy_history([d for d in days if d.day < day], unhealthy),
        min_history=nightly.min_history_days,
        window_days=nightly.trailing_days,
    )
    last_days = _last_days(scores, day)
    # A re-run of the day: the alerts its earlier run recorded were sent before they were recorded.
    sent = {r.alert_id for r in scores.where(F.col("date") == F.lit(day)).where("alert_id IS NOT NULL").collect()}
    rows, alerts, to_send = [], [], []
    ranks: dict[str, int] = defaultdict(int)
    for m in machines:  # worst first: rank 1 is the least healthy machine of its site
        ranks[m.site] += 1
        outcome = next_day(
            (m.site, m.asset_id),
            day,
            m.score if m.basis != "none" else None,  # nothing to compare with: no evidence either way
            last_days.get((m.site, m.asset_id)),
            unhealthy_below=nightly.unhealthy_below,
            healthy_again_at=nightly.healthy_again_at,
        )
        change = outcome.change
        if change is not None:
            alerts.append(f"{m.asset_id} ({m.site}): health {m.score:.1f}, {change.state.value}")
            if str(change.alert_id) not in sent:
                to_send.append(_alert(m, change, day, nightly))
        rows.append(
            (
                m.asset_id,
                m.site,
                m.machine_kind,
                float(m.score),
                ranks[m.site],
                m.score >= nightly.unhealthy_below,
                m.basis,
                m.worst.sensor_id,
                m.worst.quantity,
                m.worst.worst_feature,
                float(m.deviation),
                m.rms_trend_per_day,
                m.sensors,
                change is not None and change.state is AlertState.OPEN,
                str(change.alert_id) if change else None,
                change is not None and change.state is AlertState.CLOSE,
                str(outcome.episode_id) if outcome.episode_id else None,
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


def _last_days(scores: DataFrame, day: date) -> dict[Machine, LastDay]:
    """Each machine's latest row before `day`, however far back: an episode stays open through unscored days."""
    before = scores.where(F.col("date") < F.lit(day))
    newest = Window.partitionBy("site", "asset_id").orderBy(F.col("date").desc())
    latest = before.withColumn("n", F.row_number().over(newest)).where("n = 1").collect()
    raised = before.where("alert_raised").groupBy("site", "asset_id").agg(F.max_by("alert_id", "date").alias("id"))
    last_raised = {(r.site, r.asset_id): r.id for r in raised.collect()}
    recorded = "episode_id" in scores.columns  # not in a table written before episodes were recorded
    return {
        (r.site, r.asset_id): LastDay(
            r.healthy, r.episode_id if recorded else None, last_raised.get((r.site, r.asset_id))
        )
        for r in latest
    }


def _alert(m: MachineScore, change: Change, day: date, nightly: NightlySettings) -> Alert:
    start = datetime.combine(day, day_time(), tzinfo=UTC)
    if change.state is AlertState.CLOSE:
        severity, threshold = Severity.INFO, nightly.healthy_again_at
        message = f"health score {m.score:.1f} on {day} back at or above {nightly.healthy_again_at:g}"
    else:
        severity = Severity.CRITICAL if m.score < nightly.critical_below else Severity.WARNING
        threshold = nightly.unhealthy_below
        message = (
            f"health score {m.score:.1f} on {day} below {nightly.unhealthy_below:g} "
            f"(worst: {m.worst.quantity} {m.worst.worst_feature}, deviation {m.worst.deviation:.1f}, "
            f"compared with {m.basis})"
        )
    return Alert(
        alert_id=change.alert_id,
        episode_id=change.episode_id,
        state=change.state,
        asset_id=m.asset_id,
        site=m.site,
        sensor_id=uuid.UUID(m.worst.sensor_id),
        rule="health_score",
        severity=severity,
        source=AlertSource.NIGHTLY,
        message=message[:1000],
        value=m.score,
        threshold=threshold,
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
