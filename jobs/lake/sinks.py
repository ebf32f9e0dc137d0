"""Delta writes of the lake writer: create tables, idempotent appends, latest-wins upserts, replay-proof readings.

Every write of a micro-batch is idempotent, so a batch re-run after a crash
(Spark re-runs the last uncommitted batch with the same offsets) changes nothing
that was already written: appends carry Delta's `txnAppId`/`txnVersion` (the
batch id), the sensor upsert keeps the latest description, and clean readings
(matched against `silver.packages`) and flagged samples (against
`bronze.flagged_samples` itself) are keyed by package, so a record the stream
stage sent twice (at-least-once replay) lands once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from jobs.lake.tables import Table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def ensure(spark: SparkSession, table: Table, root: str) -> None:
    """Create `table` empty at its location unless it exists (so Trino can register it before any data)."""
    partitioned = f"PARTITIONED BY ({', '.join(table.partitioned_by)})" if table.partitioned_by else ""
    columns = " ".join(table.ddl.split())
    spark.sql(f"CREATE TABLE IF NOT EXISTS delta.`{table.s3a(root)}` ({columns}) USING DELTA {partitioned}")


def append(rows: DataFrame, table: Table, root: str, app_id: str, batch_id: int) -> None:
    """Append once per (app_id, batch_id): Delta skips a write whose transaction version it already has."""
    (
        rows.write.format("delta")
        .mode("append")
        .option("txnAppId", f"{app_id}:{table.qualified}")
        .option("txnVersion", batch_id)
        .save(table.s3a(root))
    )


def upsert_latest(spark: SparkSession, rows: DataFrame, table: Table, root: str, key: str, newer: str) -> None:
    """Insert new keys; replace a row only with a description at least as new (a replay never rolls back)."""
    target = DeltaTable.forPath(spark, table.s3a(root)).alias("t")
    (
        target.merge(rows.alias("s"), f"t.{key} = s.{key}")
        .whenMatchedUpdateAll(condition=f"s.{newer} >= t.{newer}")
        .whenNotMatchedInsertAll()
        .execute()
    )


def retire(spark: SparkSession, retired: DataFrame, table: Table, root: str) -> None:
    """Mark known sensors retired, unless their row is newer than the tombstone (registered again since)."""
    target = DeltaTable.forPath(spark, table.s3a(root)).alias("t")
    (
        target.merge(retired.alias("s"), "t.sensor_id = s.sensor_id")
        .whenMatchedUpdate(
            condition="s.retired_at >= t.updated_at",
            set={
                "status": F.lit("retired"),
                "updated_at": F.col("s.retired_at"),
                "kafka_partition": F.col("s.kafka_partition"),
                "kafka_offset": F.col("s.kafka_offset"),
            },
        )
        .execute()
    )


def utc_date(moment: datetime) -> date:
    """The UTC date of a time pyspark collected: it hands timestamps back naive, in this process's local time,
    while the received_date partitions are UTC dates. `.date()` alone pruned to the wrong day on a host whose
    offset from UTC exceeds the dedupe window, and a replay near midnight landed twice."""
    return moment.astimezone(UTC).date()  # a naive datetime is taken as local time, which it is


def first_deliveries(spark: SparkSession, batches: DataFrame, index: Table, root: str, window: timedelta) -> DataFrame:
    """Per-package records (clean or flagged) whose package is not yet in `index`: replays and in-batch repeats removed.

    `index` is the table that records which packages landed; it needs `package_id`, `received_at` and the
    partition column `received_date`, and may hold several rows per package. Within a batch the record read
    first (lowest partition, offset) wins, so a re-run batch picks the same one. A replayed record (the stream
    stage re-processing after a crash) carries the same `received_at` as its first delivery: the broker's
    append time of the same package message. So only packages received within `window` of the batch's are
    looked up, which the received_date partitions and Delta's per-file min/max statistics prune to a few files
    however large the table grows. The choice is made on the narrow (package id, position) pairs and
    broadcast back, so the wide sample arrays are never shuffled or sorted.
    """
    position = F.struct("kafka_partition", "kafka_offset")
    first = batches.groupBy("package_id").agg(F.min(position).alias("pos"))
    span = batches.agg(F.min("received_at"), F.max("received_at")).first()
    if span is not None and span[0] is not None:
        low, high = span[0] - window, span[1] + window
        known = (
            spark.read.format("delta")
            .load(index.s3a(root))
            .where(F.col("received_date").between(F.lit(utc_date(low)), F.lit(utc_date(high))))
            .where(F.col("received_at").between(F.lit(low), F.lit(high)))
            .select("package_id")
        )
        first = first.join(known, "package_id", "left_anti")
    winners = first.select("package_id", "pos.kafka_partition", "pos.kafka_offset")
    return batches.join(F.broadcast(winners), ["package_id", "kafka_partition", "kafka_offset"], "left_semi")
