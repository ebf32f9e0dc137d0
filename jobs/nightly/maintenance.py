"""Compaction of a day's small files (the stream writer adds some per micro-batch), retention and VACUUM."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import TYPE_CHECKING

from delta.tables import DeltaTable

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

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("vigil.nightly")

# Per table: the predicate selecting one day's partition (for OPTIMIZE), and the day column retention uses.
_DAY_PARTITION = {
    BRONZE_PACKAGES: "ingest_date = '{day}'",
    BRONZE_DEADLETTER: "rejected_date = '{day}'",
    BRONZE_AUDIT: "audit_date = '{day}'",
    BRONZE_FLAGGED_SAMPLES: "received_date = '{day}'",
    SILVER_PACKAGES: "received_date = '{day}'",
    # silver.readings is partitioned by asset and month: compacting the day's month also catches late rows.
    SILVER_READINGS: "year = {day.year} AND month = {day.month}",
    SILVER_ALERTS: "",
}
_RETENTION_COLUMN = {
    BRONZE_PACKAGES: "ingest_date",
    BRONZE_DEADLETTER: "rejected_date",
    BRONZE_AUDIT: "audit_date",
    BRONZE_FLAGGED_SAMPLES: "received_date",
    SILVER_PACKAGES: "received_date",
    SILVER_READINGS: "to_date(t)",
    SILVER_ALERTS: "to_date(raised_at)",
}


def maintain(
    spark: SparkSession, root: str, day: date, retention_days: dict[str, int], vacuum_retain_hours: int
) -> list[str]:
    """Compact `day`, delete rows past each table's retention, vacuum; return what was done, one line each."""
    done = []
    for table, partition in _DAY_PARTITION.items():
        path = table.s3a(root)
        if not DeltaTable.isDeltaTable(spark, path):
            done.append(f"{table.qualified}: not created yet, skipped")
            continue
        delta = DeltaTable.forPath(spark, path)
        optimize = delta.optimize()
        if partition:
            optimize = optimize.where(partition.format(day=day))
        metrics = optimize.executeCompaction().select("metrics.numFilesAdded", "metrics.numFilesRemoved").first()
        added, removed = (metrics[0], metrics[1]) if metrics is not None else (0, 0)
        line = f"{table.qualified}: compacted {removed} files into {added}"
        keep = retention_days.get(table.qualified)
        if keep is not None:
            cutoff = day - timedelta(days=keep)
            delta.delete(f"{_RETENTION_COLUMN[table]} < DATE'{cutoff.isoformat()}'")
            line += f"; rows before {cutoff} deleted"
        delta.vacuum(vacuum_retain_hours)
        done.append(f"{line}; vacuumed (files unreferenced for {vacuum_retain_hours} h)")
        log.info(done[-1])
    return done


def is_table(spark: SparkSession, table: Table, root: str) -> bool:
    return bool(DeltaTable.isDeltaTable(spark, table.s3a(root)))
