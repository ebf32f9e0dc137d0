"""gold.pipeline_ledger: per day and topic, messages in Kafka against rows in the lake.

Kafka's count for a day is, per partition, the offset of the first message at or
after the day's end minus that of the first at or after its start (the broker
looks these up by message timestamp: append time on edge.packages.v1, producer
time elsewhere). A message that retention already deleted is not counted: the
ledger is only exact for days still inside each topic's retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final

from confluent_kafka import Consumer, TopicPartition
from pyspark.sql import functions as F

from jobs.lake.tables import (
    BRONZE_AUDIT,
    BRONZE_DEADLETTER,
    BRONZE_FLAGGED_SAMPLES,
    BRONZE_PACKAGES,
    SILVER_ALERTS,
    SILVER_PACKAGES,
    SILVER_READINGS,
    Table,
)
from jobs.nightly.maintenance import is_table

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


@dataclass(frozen=True)
class Check:
    """Rows of `table` whose `day_of` falls on the day (and match `where`) against `topic`'s messages that day."""

    topic: str
    table: Table
    day_of: str  # a column holding the time the row's message reached its topic
    where: str = "TRUE"
    note: str = ""
    per: str = ""  # count distinct values of this column instead of rows: for tables with several rows per message


CHECKS: Final = (
    Check("edge.packages.v1", BRONZE_PACKAGES, "kafka_timestamp", note="every package message, as received"),
    Check(
        "edge.deadletter.v1",
        BRONZE_DEADLETTER,
        "kafka_timestamp",
        "stage <> 'lake'",
        "dead letters of the stream stage (rows the lake itself quarantined are counted apart)",
    ),
    Check(
        "readings.clean.v1",
        SILVER_PACKAGES,
        "processed_at",
        note="one row per clean package; a replayed record lands once, so Kafka may count more",
    ),
    Check(
        "readings.flagged.v1",
        BRONZE_FLAGGED_SAMPLES,
        "processed_at",
        note="packages with flagged samples (rows are samples); a replayed record lands once, so Kafka may count more",
        per="package_id",
    ),
    Check("alerts.v1", SILVER_ALERTS, "raised_at", note="every open and close"),
    Check("audit.v1", BRONZE_AUDIT, "at", note="every REST broker request (day of receipt vs Kafka's append)"),
)


def kafka_counts(bootstrap: str, topics: list[str], day: date) -> dict[str, int]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    bounds = [round(start.timestamp() * 1000), round((start + timedelta(days=1)).timestamp() * 1000)]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "vigil-nightly-ledger", "log_level": 4})
    counts: dict[str, int] = {}
    try:
        for topic in topics:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            total = 0
            for p in partitions:
                high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                first, after = (
                    consumer.offsets_for_times([TopicPartition(topic, p, ms)], timeout=10)[0].offset for ms in bounds
                )
                # -1: no message at or after that time, so the day's range ends at the high watermark.
                first, after = (high if first < 0 else first), (high if after < 0 else after)
                total += max(after - first, 0)
            counts[topic] = total
    finally:
        consumer.close()
    return counts


def _on_day(column: str, day: date) -> Column:
    return F.to_date(F.col(column)) == F.lit(day)


def ledger_rows(spark: SparkSession, root: str, bootstrap: str, day: date) -> list[tuple[object, ...]]:
    """The ledger's rows for `day`. A table the lake writer has not created yet counts as empty (and says so)."""
    kafka = kafka_counts(bootstrap, [c.topic for c in CHECKS], day)
    rows: list[tuple[object, ...]] = []
    for check in CHECKS:
        table = _load(spark, check.table, root)
        if table is None:
            rows.append(_row(check.topic, check.table.qualified, kafka[check.topic], 0, _NOT_CREATED + check.note, day))
            continue
        selected = table.where(_on_day(check.day_of, day)).where(check.where)
        landed = (selected.select(check.per).distinct() if check.per else selected).count()
        rows.append(_row(check.topic, check.table.qualified, kafka[check.topic], landed, check.note, day))
    rows += _sample_checks(spark, root, day)
    deadletter = _load(spark, BRONZE_DEADLETTER, root)
    quarantined = (
        0 if deadletter is None else deadletter.where("stage = 'lake'").where(_on_day("rejected_at", day)).count()
    )
    rows.append(
        (
            "(any)",
            f"{BRONZE_DEADLETTER.qualified} (stage lake)",
            None,
            quarantined,
            None,
            "ok" if quarantined == 0 else "quarantined",
            "records the lake writer could not decode",
            day,
        )
    )
    return rows


_NOT_CREATED: Final = "table not created yet (the lake writer creates it at its start); "


def _load(spark: SparkSession, table: Table, root: str) -> DataFrame | None:
    return spark.read.format("delta").load(table.s3a(root)) if is_table(spark, table, root) else None


def _sample_checks(spark: SparkSession, root: str, day: date) -> list[tuple[object, ...]]:
    """Sample counts that silver.packages declares per clean package, against the rows holding those samples.

    Each clean record says how many samples it carries (`ok_samples`) and how many the quality stage kept out,
    by code (`dropped`); the kept-out ones travel in the package's flagged record. Both records of a package
    carry the same `processed_at`, so the counts agree per day, unless a worker crashed between sending the
    two and graded the replayed package differently (the lake keeps each record's first landing).
    """
    packages = _load(spark, SILVER_PACKAGES, root)
    declared = (0, 0)
    if packages is not None:
        dropped = F.aggregate(F.map_values("dropped"), F.lit(0).cast("bigint"), lambda total, n: total + n)
        sums = packages.where(_on_day("processed_at", day)).agg(F.sum("ok_samples"), F.sum(dropped)).first()
        declared = (int(sums[0] or 0), int(sums[1] or 0)) if sums is not None else (0, 0)
    rows = []
    for table, expected, note in (
        (SILVER_READINGS, declared[0], "samples: silver.packages ok_samples against silver.readings rows"),
        (
            BRONZE_FLAGGED_SAMPLES,
            declared[1],
            "samples: silver.packages dropped (all codes) against bronze.flagged_samples rows",
        ),
    ):
        landed = _load(spark, table, root)
        count = 0 if landed is None else landed.where(_on_day("processed_at", day)).count()
        prefix = _NOT_CREATED if landed is None else ""
        rows.append(
            _row(
                "readings.clean.v1",
                table.qualified,
                expected,
                count,
                f"{prefix}{note} (kafka_messages = the former)",
                day,
            )
        )
    return rows


def _row(topic: str, table: str, kafka: int, landed: int, note: str, day: date) -> tuple[object, ...]:
    status = "ok" if kafka == landed else ("missing" if landed < kafka else "extra")
    return (topic, table, kafka, landed, landed - kafka, status, note, day)
