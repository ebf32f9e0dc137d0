"""Kafka records -> table rows: one function per table, DataFrame in, DataFrame out, no I/O.

The input of each is the Kafka source's rows (key, value, topic, partition,
offset, timestamp) of one topic. Avro topics are decoded with the `.avsc` files
of `contracts/`, the same schemas the stream stage writes with.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro
from pyspark.sql.window import Window

from contracts import Alert, AuditEvent, CleanReadingBatch, DeadLetter, FlaggedSamples
from contracts.avro import raw_schema

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# A record that does not decode becomes a null struct (PERMISSIVE) instead of failing the batch: one bad
# record must not stop the lake. `decode` keeps the raw bytes next to it and `undecodable` quarantines them.
_AVRO_OPTIONS = {"mode": "PERMISSIVE"}
AvroModel = type[CleanReadingBatch | FlaggedSamples | Alert | DeadLetter | AuditEvent]


def decode(kafka: DataFrame, model: AvroModel) -> DataFrame:
    """Kafka rows with the decoded record in `r` (null when the bytes are not a `model` record).

    Spark's PERMISSIVE mode may give a struct of nulls rather than a null struct for
    a truncated record, so the schema's first field (required in every Vigil
    schema) decides.
    """
    schema = raw_schema(model)
    first = schema["fields"][0]["name"]
    record = from_avro(F.col("value"), json.dumps(schema), _AVRO_OPTIONS)
    decoded = kafka.select(record.alias("r"), "*")
    return decoded.withColumn("r", F.when(F.col(f"r.{first}").isNotNull(), F.col("r")))


def undecodable(decoded: DataFrame, model: AvroModel) -> DataFrame:
    """bronze.deadletter rows for the records of `decoded` that are not valid `model` Avro: nothing is dropped."""
    return decoded.where(F.col("r").isNull()).select(
        F.lit("schema_violation").alias("reason"),
        F.lit(None).cast("string").alias("field"),
        F.lit(f"not a {model.__name__} Avro record ({raw_schema(model)['name']} schema)").alias("detail"),
        F.lit("lake").alias("stage"),
        F.coalesce("value", F.lit(b"")).alias("original"),
        F.col("key").alias("original_key"),
        F.col("topic").alias("source_topic"),
        F.col("partition").alias("source_partition"),
        F.col("offset").alias("source_offset"),
        F.col("timestamp").alias("source_timestamp"),
        F.current_timestamp().alias("rejected_at"),
        F.lit(None).cast("string").alias("package_id"),
        F.lit(None).cast("string").alias("gateway_id"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.current_date().alias("rejected_date"),
    )


def bronze_packages(kafka: DataFrame) -> DataFrame:
    """Every package message unaltered; ids read from the JSON when it has them (null for malformed input)."""
    text = F.col("value").cast("string")
    return kafka.select(
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        "key",
        "value",
        F.get_json_object(text, "$.package_id").alias("package_id"),
        F.get_json_object(text, "$.gateway_id").alias("gateway_id"),
        F.get_json_object(text, "$.sensor_id").alias("sensor_id"),
        F.to_date(F.col("timestamp")).alias("ingest_date"),
    )


def deadletters(decoded: DataFrame) -> DataFrame:
    """bronze.deadletter rows from decoded edge.deadletter.v1 records."""
    return decoded.where(F.col("r").isNotNull()).select(
        "r.reason",
        "r.field",
        "r.detail",
        "r.stage",
        "r.original",
        "r.original_key",
        "r.source_topic",
        "r.source_partition",
        "r.source_offset",
        "r.source_timestamp",
        "r.rejected_at",
        "r.package_id",
        "r.gateway_id",
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.to_date("r.rejected_at").alias("rejected_date"),
    )


def records(decoded: DataFrame) -> DataFrame:
    """The decoded records (clean or flagged), one row per package, with the Kafka position each was read from."""
    return decoded.where(F.col("r").isNotNull()).select(
        "r.*", F.col("partition").alias("kafka_partition"), F.col("offset").alias("kafka_offset")
    )


def packages(batches: DataFrame) -> DataFrame:
    """One row per clean package: what the samples of silver.readings cannot say (drops, gaps, features)."""
    return batches.select(
        "package_id",
        "gateway_id",
        "sensor_id",
        "asset_id",
        "site",
        "quantity",
        "unit",
        "clock_source",
        "clock_offset_ms",
        F.timestamp_micros(F.array_min("t_us")).alias("first_t"),
        F.timestamp_micros(F.array_max("t_us")).alias("last_t"),
        F.size("v").alias("ok_samples"),
        "dropped",
        "missing_samples",
        "features",
        "claim_uri",
        "source_partition",
        "source_offset",
        "received_at",
        "processed_at",
        "kafka_partition",
        "kafka_offset",
        F.to_date("received_at").alias("received_date"),
    )


def _sample_times() -> list[Column]:
    """Both times of the exploded sample `s` as timestamps and exact microseconds (readings, flagged samples)."""
    return [
        F.timestamp_micros("s.t_us").alias("t"),
        F.col("s.t_us").alias("t_us"),
        F.timestamp_micros("s.t_raw_us").alias("t_raw"),
        F.col("s.t_raw_us").alias("t_raw_us"),
    ]


def readings(batches: DataFrame) -> DataFrame:
    """One row per sample; `sample_index` is the sample's position in the clean record (unique per package)."""
    zipped = F.arrays_zip("t_us", "t_raw_us", "v", "quality")
    exploded = batches.select("*", F.posexplode(zipped).alias("sample_index", "s"))
    t = F.timestamp_micros("s.t_us")
    return exploded.select(
        "package_id",
        F.col("sample_index").cast("int").alias("sample_index"),
        "sensor_id",
        "asset_id",
        "site",
        "location_on_machine",
        "quantity",
        "unit",
        F.col("s.v").alias("value"),
        F.col("s.quality").alias("quality"),
        *_sample_times(),
        "gateway_id",
        "clock_source",
        "clock_offset_ms",
        "source_partition",
        "source_offset",
        "received_at",
        "processed_at",
        F.year(t).alias("year"),
        F.month(t).alias("month"),
    )


def flagged_samples(records: DataFrame) -> DataFrame:
    """One row per flagged sample; `sample_index` comes with the record: the position in the package as sent."""
    zipped = F.arrays_zip("sample_index", "t_us", "t_raw_us", "v", "quality")
    exploded = records.select("*", F.explode(zipped).alias("s"))
    return exploded.select(
        "package_id",
        F.col("s.sample_index").alias("sample_index"),
        "sensor_id",
        "asset_id",
        "site",
        "quantity",
        "unit",
        F.col("s.quality").alias("quality"),
        F.col("s.v").alias("value"),
        *_sample_times(),
        "gateway_id",
        "clock_offset_ms",
        "source_partition",
        "source_offset",
        "received_at",
        "processed_at",
        "kafka_partition",
        "kafka_offset",
        F.to_date("received_at").alias("received_date"),
    )


def alerts(decoded: DataFrame) -> DataFrame:
    return decoded.where(F.col("r").isNotNull()).select(
        "r.*", F.col("partition").alias("kafka_partition"), F.col("offset").alias("kafka_offset")
    )


def audit(decoded: DataFrame) -> DataFrame:
    """bronze.audit rows: the REST broker's audit events as they are, partitioned by their UTC day."""
    return decoded.where(F.col("r").isNotNull()).select(
        "r.*",
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.to_date(F.col("r.at")).alias("audit_date"),
    )


_SENSOR_JSON = """
    sensor_id STRING, label MAP<STRING, STRING>, quantity STRING, unit STRING, sampling_rate_hz DOUBLE,
    range STRUCT<min: DOUBLE, max: DOUBLE>,
    thresholds STRUCT<warning_low: DOUBLE, warning_high: DOUBLE, critical_low: DOUBLE, critical_high: DOUBLE>,
    context STRUCT<machine_id: STRING, machine_label: MAP<STRING, STRING>, machine_kind: STRING,
                   location_on_machine: STRING, site: STRING, purpose: STRING, status: STRING>,
    updated_at TIMESTAMP
"""
_SENSOR_REQUIRED = ("sensor_id", "quantity", "unit", "sampling_rate_hz", "range_min", "range_max", "machine_id")


def sensors(kafka: DataFrame) -> DataFrame:
    """The latest description per sensor in this batch; documents the stream stage rejects are left out.

    Tombstones (null values: the registry deleted the sensor) carry no description: `retirements` has them.
    """
    document = F.col("value").cast("string")
    parsed = kafka.where(F.col("value").isNotNull()).select(
        F.from_json(document, _SENSOR_JSON).alias("s"), document.alias("document"), "partition", "offset", "timestamp"
    )
    rows = parsed.select(
        "s.sensor_id",
        F.coalesce("s.label", F.create_map()).alias("label"),
        "s.quantity",
        "s.unit",
        "s.sampling_rate_hz",
        F.col("s.range.min").alias("range_min"),
        F.col("s.range.max").alias("range_max"),
        "s.thresholds.warning_low",
        "s.thresholds.warning_high",
        "s.thresholds.critical_low",
        "s.thresholds.critical_high",
        F.col("s.context.machine_id").alias("machine_id"),
        F.coalesce("s.context.machine_label", F.create_map()).alias("machine_label"),
        F.col("s.context.machine_kind").alias("machine_kind"),
        F.col("s.context.location_on_machine").alias("location_on_machine"),
        F.col("s.context.site").alias("site"),
        F.col("s.context.purpose").alias("purpose"),
        F.coalesce("s.context.status", F.lit("active")).alias("status"),
        F.coalesce("s.updated_at", "timestamp").alias("updated_at"),
        "document",
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
    )
    for column in (*_SENSOR_REQUIRED, "location_on_machine", "site"):
        rows = rows.where(F.col(column).isNotNull())
    order = Window.partitionBy("sensor_id").orderBy(F.col("updated_at").desc(), F.col("kafka_offset").desc())
    latest = F.row_number().over(order)
    return rows.withColumn("_n", latest).where("_n = 1").drop("_n")


def retirements(kafka: DataFrame) -> DataFrame:
    """Sensors whose last message in this batch is a tombstone: the registry deleted them, the stream stage
    parks their later packages, and silver.sensors marks them retired (keeping their last description).

    A sensor's messages share its key, so they share a partition and their offsets order them; a tombstone
    followed by a new description in the same batch (deleted, then registered again) retires nothing.
    """
    last = Window.partitionBy("key").orderBy(F.col("offset").desc())
    latest = kafka.where(F.col("key").isNotNull()).withColumn("_n", F.row_number().over(last)).where("_n = 1")
    return latest.where(F.col("value").isNull()).select(
        F.col("key").cast("string").alias("sensor_id"),
        F.col("timestamp").alias("retired_at"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
    )
