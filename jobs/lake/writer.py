"""The streaming lake writer: one Spark Structured Streaming query, Kafka -> every streamed Delta table.

One query reads all the topics and writes each micro-batch to its tables in
`write_batch`, so each table has exactly one writer and the machine runs one
trigger loop instead of one per table. Guarantees:

- Kafka offsets are tracked in the checkpoint; `failOnDataLoss` stays on, so
  offsets that vanished from Kafka stop the writer instead of being skipped.
- A batch that failed half-way is re-run by Spark with the same offsets after a
  restart; each table write in it is idempotent (see `jobs.lake.sinks`), so a
  killed writer neither loses nor duplicates rows.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import timedelta
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contracts import Alert, AuditEvent, CleanReadingBatch, DeadLetter, FlaggedSamples
from infra.settings import InfraSettings, get_settings
from infra.stop_signals import set_on_stop_signals
from jobs.lake import catalog, sinks, transforms, views
from jobs.lake.settings import LakeSettings
from jobs.lake.status import Supervision, status_path, write_status
from jobs.lake.tables import (
    BRONZE_AUDIT,
    BRONZE_DEADLETTER,
    BRONZE_FLAGGED_SAMPLES,
    BRONZE_PACKAGES,
    SILVER_ALERTS,
    SILVER_PACKAGES,
    SILVER_READINGS,
    SILVER_SENSORS,
    STREAMED,
)
from jobs.spark_session import build_spark

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming.query import StreamingQuery

log = logging.getLogger("vigil.lake")
PACKAGES, DEAD_LETTER, CLEAN_READINGS, FLAGGED, ALERTS, METADATA, AUDIT = (
    "edge.packages.v1",
    "edge.deadletter.v1",
    "readings.clean.v1",
    "readings.flagged.v1",
    "alerts.v1",
    "edge.metadata.v1",
    "audit.v1",
)
TOPICS = (PACKAGES, DEAD_LETTER, CLEAN_READINGS, FLAGGED, ALERTS, METADATA, AUDIT)
QUERY_NAME = "vigil-lake"


def writer_id(checkpoint: Path) -> str:
    """A name for this checkpoint's idempotent writes, kept beside it.

    Delta skips a transaction version it has seen for an app id. A new checkpoint
    restarts batch ids at 0, so it must also get a new app id, or its writes would
    all be skipped as already done.
    """
    path = checkpoint / "writer-id"
    if not path.exists():
        checkpoint.mkdir(parents=True, exist_ok=True)
        path.write_text(f"vigil-lake-{uuid.uuid4()}\n")
    return path.read_text().strip()


def prepare_tables(spark: SparkSession, infra: InfraSettings, lake: LakeSettings) -> None:
    """Create missing tables and register them in Trino, so queries work before the first row arrives."""
    for table in STREAMED:
        sinks.ensure(spark, table, lake.root)
        if lake.register_in_trino and catalog.register(infra, table, lake.trino_root):
            log.info("registered %s in Trino at %s", table.qualified, table.s3(lake.trino_root))
    if lake.register_in_trino:
        log.info("views: %s", ", ".join(views.create_views(infra)))


def write_batch(spark: SparkSession, lake: LakeSettings, app_id: str, batch: DataFrame, batch_id: int) -> None:
    """Write one micro-batch of all topics; every write is idempotent for a re-run of `batch_id`."""
    began = time.monotonic()
    steps: dict[str, float] = {}

    def timed(step: str, started: float) -> None:
        steps[step] = round(time.monotonic() - started, 2)

    batch.persist()
    cached: list[DataFrame] = [batch]
    try:
        by_topic = {row["topic"]: row["count"] for row in batch.groupBy("topic").count().collect()}

        def topic(name: str) -> DataFrame:
            return batch.where(F.col("topic") == name)

        def decoded(name: str, model: transforms.AvroModel) -> tuple[DataFrame, bool]:
            rows = transforms.decode(topic(name), model).persist()
            cached.append(rows)
            return rows, rows.where(F.col("r").isNull()).limit(1).count() > 0

        # Undecodable Avro records of any topic join the dead letters: one append per table and batch.
        quarantine: list[DataFrame] = []
        # What analysts and apps query first: each table write of a batch takes seconds here, and a table's rows
        # become visible when its own write commits, so clean readings and alerts go before the raw archives.
        avro_topics: tuple[tuple[str, transforms.AvroModel], ...] = (
            (CLEAN_READINGS, CleanReadingBatch),
            (ALERTS, Alert),
            (FLAGGED, FlaggedSamples),
            (AUDIT, AuditEvent),
            (DEAD_LETTER, DeadLetter),
        )
        for name, model in avro_topics:
            if not by_topic.get(name):
                continue
            t = time.monotonic()
            rows, has_bad = decoded(name, model)
            if has_bad:
                quarantine.append(transforms.undecodable(rows, model))
            if model is Alert:
                sinks.append(transforms.alerts(rows), SILVER_ALERTS, lake.root, app_id, batch_id)
                timed("silver.alerts", t)
            elif model is AuditEvent:
                sinks.append(transforms.audit(rows), BRONZE_AUDIT, lake.root, app_id, batch_id)
                timed("bronze.audit", t)
            elif model is CleanReadingBatch:
                _write_readings(spark, lake, app_id, transforms.records(rows), batch_id)
                timed("silver.readings+packages", t)
            elif model is FlaggedSamples:
                _write_flagged(spark, lake, app_id, transforms.records(rows), batch_id)
                timed("bronze.flagged_samples", t)
            else:
                quarantine.append(transforms.deadletters(rows))
        if by_topic.get(PACKAGES):
            t = time.monotonic()
            sinks.append(transforms.bronze_packages(topic(PACKAGES)), BRONZE_PACKAGES, lake.root, app_id, batch_id)
            timed("bronze.packages", t)
        if by_topic.get(METADATA):
            t = time.monotonic()
            metadata = topic(METADATA)
            rows = transforms.sensors(metadata)
            sinks.upsert_latest(spark, rows, SILVER_SENSORS, lake.root, key="sensor_id", newer="updated_at")
            retired = transforms.retirements(metadata)
            if not retired.isEmpty():  # tombstones are rare: most batches skip the merge (and its commit)
                sinks.retire(spark, retired, SILVER_SENSORS, lake.root)
            timed("silver.sensors", t)
        if quarantine:
            t = time.monotonic()
            sinks.append(reduce(DataFrame.unionByName, quarantine), BRONZE_DEADLETTER, lake.root, app_id, batch_id)
            timed("bronze.deadletter", t)
        log.info(
            "batch %d written in %.1f s: %s; seconds per table: %s",
            batch_id,
            time.monotonic() - began,
            by_topic or "no messages",
            steps,
        )
    finally:
        for frame in cached:
            frame.unpersist()


def _write_readings(spark: SparkSession, lake: LakeSettings, app_id: str, batches: DataFrame, batch_id: int) -> None:
    # Readings first, their packages last: silver.packages is the dedupe index, so a crash between the two
    # writes leaves the packages "new" for the re-run, whose readings append is then skipped as done.
    window = timedelta(minutes=lake.dedupe_window_minutes)
    fresh = sinks.first_deliveries(spark, batches, SILVER_PACKAGES, lake.root, window)
    fresh.persist()
    try:
        sinks.append(transforms.readings(fresh), SILVER_READINGS, lake.root, app_id, batch_id)
        sinks.append(transforms.packages(fresh), SILVER_PACKAGES, lake.root, app_id, batch_id)
    finally:
        fresh.unpersist()


def _write_flagged(spark: SparkSession, lake: LakeSettings, app_id: str, records: DataFrame, batch_id: int) -> None:
    # The table is its own dedupe index (one append holds a package's samples), keyed by package like readings.
    window = timedelta(minutes=lake.dedupe_window_minutes)
    fresh = sinks.first_deliveries(spark, records, BRONZE_FLAGGED_SAMPLES, lake.root, window)
    sinks.append(transforms.flagged_samples(fresh), BRONZE_FLAGGED_SAMPLES, lake.root, app_id, batch_id)


def start_query(spark: SparkSession, infra: InfraSettings, lake: LakeSettings) -> StreamingQuery:
    checkpoint = lake.checkpoint(infra)
    app_id = writer_id(checkpoint)
    source = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", infra.kafka_bootstrap)
        .option("subscribe", ",".join(TOPICS))
        .option("startingOffsets", lake.starting_offsets)
        .option("failOnDataLoss", "true")
        .option("maxOffsetsPerTrigger", lake.max_offsets_per_trigger)
        .load()
    )

    def each_batch(batch: DataFrame, batch_id: int) -> None:
        write_batch(spark, lake, app_id, batch, batch_id)

    return (
        source.writeStream.queryName(QUERY_NAME)
        .foreachBatch(each_batch)
        .option("checkpointLocation", str(checkpoint / "query"))
        .trigger(processingTime=f"{lake.trigger_seconds} seconds")
        .start()
    )


def _write_status(path: Path, query: StreamingQuery | None, supervision: Supervision, error: str | None = None) -> None:
    progress: dict[str, Any] = (query.lastProgress or {}) if query is not None else {}
    write_status(
        path,
        active=bool(query is not None and query.isActive),
        batch_id=progress.get("batchId"),
        input_rows=progress.get("numInputRows"),
        rows_per_second=progress.get("processedRowsPerSecond"),
        batch_ms=(progress.get("durationMs") or {}).get("triggerExecution"),
        error=error,
        restarts=supervision.restarts,
        last_failure=supervision.last_failure,
    )


def run(
    infra: InfraSettings | None = None, lake: LakeSettings | None = None, supervision: Supervision | None = None
) -> None:
    """Run the writer until SIGTERM/SIGINT (or its supervisor is gone); the status file says how it is doing."""
    infra = infra or get_settings()
    lake = lake or LakeSettings()
    supervision = supervision or Supervision()
    path = status_path(infra, lake)
    stopping = threading.Event()
    set_on_stop_signals(stopping)
    try:
        _run_query(infra, lake, supervision, path, stopping)
    except QueryStopped:
        raise  # its status, with the query's last progress, is written
    except Exception as exc:
        # Before the query runs (a bucket missing, MinIO or Trino away): say why in the status file, where
        # `make lake-status` and the supervisor look, not only in the log.
        _write_status(path, None, supervision, _describe(exc))
        raise


class QueryStopped(RuntimeError):
    """The streaming query ended while no stop was asked for (a micro-batch failed)."""


def _run_query(
    infra: InfraSettings, lake: LakeSettings, supervision: Supervision, path: Path, stopping: threading.Event
) -> None:
    spark = build_spark("vigil-lake-writer", infra, driver_memory=lake.driver_memory)
    try:
        prepare_tables(spark, infra, lake)
        query = start_query(spark, infra, lake)
        log.info("writing %s to %s every %ss", ", ".join(TOPICS), lake.root, lake.trigger_seconds)
        while not stopping.is_set():
            if not query.isActive:
                failure = query.exception()
                _write_status(path, query, supervision, str(failure) if failure else "query stopped")
                raise QueryStopped(f"lake writer query stopped: {failure}")
            if supervision.orphaned():
                # The supervisor was killed on its own: `make down` can no longer find this process by the
                # recorded PID, so stop rather than run on unseen.
                log.warning("the supervisor (pid %s) is gone: stopping", supervision.supervisor_pid)
                break
            _write_status(path, query, supervision)
            stopping.wait(2.0)
        log.info("stopping: the current batch finishes or is re-run at the next start")
        query.stop()
        _write_status(path, None, supervision, "stopped")
    finally:
        spark.stop()


def _describe(exc: Exception) -> str:
    """One line naming a failure; for a JVM one, the Java exception rather than py4j's "error calling o65.sql"."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else f"{type(exc).__name__}: {exc}"
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
