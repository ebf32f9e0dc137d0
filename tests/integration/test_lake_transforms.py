"""The lake writer's transforms on real Spark: Kafka-shaped rows in, rows that fit each table's DDL out.

The flagged samples are also written through `write_batch` to Delta tables in a temporary folder, to show
that a re-run micro-batch and a replayed record do not double rows.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from contracts import Alert, AuditEvent, CleanReadingBatch, DeadLetter, FlaggedSamples, SensorDescription
from contracts import avro as avro_codec
from jobs.lake import sinks, transforms, writer
from jobs.lake.settings import LakeSettings
from jobs.lake.tables import (
    BRONZE_AUDIT,
    BRONZE_DEADLETTER,
    BRONZE_FLAGGED_SAMPLES,
    BRONZE_PACKAGES,
    SILVER_ALERTS,
    SILVER_PACKAGES,
    SILVER_READINGS,
    SILVER_SENSORS,
    Table,
)

pytestmark = pytest.mark.integration
KAFKA = "key binary, value binary, topic string, partition int, offset long, timestamp timestamp, timestampType int"
APPENDED = datetime(2026, 11, 23, 8, 0, 1, tzinfo=UTC)


def _example(name: str) -> str:
    return resources.files("contracts").joinpath("examples", name).read_text(encoding="utf-8")


def _kafka(spark: SparkSession, topic: str, values: list[bytes | None]) -> DataFrame:
    rows = [(b"k", v, topic, 2, 100 + i, APPENDED, 1) for i, v in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA)


def _fits(spark: SparkSession, rows: DataFrame, table: Table) -> None:
    """Same column names, order and types as the table's DDL (nullability is enforced by Delta on write)."""
    declared = StructType.fromDDL(" ".join(table.ddl.replace("NOT NULL", "").split()))
    assert isinstance(declared, StructType)
    assert [(f.name, f.dataType) for f in rows.schema.fields] == [(f.name, f.dataType) for f in declared.fields]


def test_clean_batches_become_readings_and_packages(spark: SparkSession) -> None:
    batch = CleanReadingBatch.model_validate_json(_example("clean_reading_batch.json"))
    kafka = _kafka(spark, "readings.clean.v1", [avro_codec.encode(batch)])
    batches = transforms.records(transforms.decode(kafka, CleanReadingBatch))
    readings = transforms.readings(batches)
    _fits(spark, readings, SILVER_READINGS)
    got = readings.orderBy("sample_index").collect()
    assert [r.sample_index for r in got] == [0, 1, 2]
    assert [r.t_us for r in got] == batch.t_us
    assert [r.t_raw_us for r in got] == batch.t_raw_us
    assert [r.value for r in got] == batch.v
    assert got[0].t == datetime.fromtimestamp(batch.t_us[0] / 1e6, tz=UTC).replace(tzinfo=None)
    assert {(r.year, r.month, r.asset_id, r.quality) for r in got} == {(2026, 11, "press-01", "ok")}
    packages = transforms.packages(batches)
    _fits(spark, packages, SILVER_PACKAGES)
    [package] = packages.collect()
    assert (package.ok_samples, package.dropped, package.kafka_offset) == (3, {"non_finite": 1}, 100)


def test_bronze_keeps_the_bytes_and_reads_ids_when_it_can(spark: SparkSession) -> None:
    good = _example("edge_package.samples.json").encode()
    kafka = _kafka(spark, "edge.packages.v1", [good, b"{not json", None])
    rows = transforms.bronze_packages(kafka)
    _fits(spark, rows, BRONZE_PACKAGES)
    got = rows.orderBy("kafka_offset").collect()
    assert [bytes(r.value) if r.value is not None else None for r in got] == [good, b"{not json", None]
    assert got[0].package_id == json.loads(good)["package_id"]
    assert got[1].package_id is None


def test_undecodable_avro_is_quarantined_not_dropped(spark: SparkSession) -> None:
    alert = Alert.model_validate_json(_example("alert.json"))
    encoded = avro_codec.encode(alert)
    kafka = _kafka(spark, "alerts.v1", [encoded, encoded[:20], b"garbage"])
    decoded = transforms.decode(kafka, Alert)
    alerts = transforms.alerts(decoded)
    _fits(spark, alerts, SILVER_ALERTS)
    assert [r.alert_id for r in alerts.collect()] == [str(alert.alert_id)]
    quarantined = transforms.undecodable(decoded, Alert)
    _fits(spark, quarantined, BRONZE_DEADLETTER)
    got = quarantined.orderBy("source_offset").collect()
    assert [(r.reason, r.stage, r.source_topic, r.source_offset) for r in got] == [
        ("schema_violation", "lake", "alerts.v1", 101),
        ("schema_violation", "lake", "alerts.v1", 102),
    ]
    assert bytes(got[0].original) == encoded[:20]


def test_audit_events_fit_bronze_audit(spark: SparkSession) -> None:
    event = AuditEvent.model_validate_json(_example("audit_event.json"))
    encoded = avro_codec.encode(event)
    kafka = _kafka(spark, "audit.v1", [encoded, b"round-trip probe"])
    decoded = transforms.decode(kafka, AuditEvent)
    rows = transforms.audit(decoded)
    _fits(spark, rows, BRONZE_AUDIT)
    [row] = rows.collect()
    assert (row.event_id, row.principal, row.outcome, row.status, row.request_bytes) == (
        str(event.event_id),
        event.principal,
        "accepted",
        202,
        event.request_bytes,
    )
    assert row.audit_date == event.at.date()
    [bad] = transforms.undecodable(decoded, AuditEvent).collect()
    assert (bad.source_topic, bad.source_offset, bytes(bad.original)) == ("audit.v1", 101, b"round-trip probe")


def test_dead_letters_and_sensors_fit_their_tables(spark: SparkSession) -> None:
    dead = DeadLetter.model_validate_json(_example("dead_letter.json"))
    decoded = transforms.decode(_kafka(spark, "edge.deadletter.v1", [avro_codec.encode(dead)]), DeadLetter)
    rows = transforms.deadletters(decoded)
    _fits(spark, rows, BRONZE_DEADLETTER)
    [row] = rows.collect()
    assert (row.reason, bytes(row.original), row.source_offset) == ("length_mismatch", dead.original, 4711)

    sensor = SensorDescription.model_validate_json(_example("sensor_description.json"))
    newer = sensor.model_copy(update={"updated_at": sensor.updated_at.replace(year=2027)})
    kafka = _kafka(spark, "edge.metadata.v1", [sensor.to_wire(), newer.to_wire(), None, b"{}"])
    sensors = transforms.sensors(kafka)
    _fits(spark, sensors, SILVER_SENSORS)
    [latest] = sensors.collect()  # one row per sensor: the newest; the tombstone and the empty object are skipped
    assert latest.updated_at.year == 2027
    assert latest.machine_id == sensor.context.machine_id
    assert latest.label == sensor.label


def _utc(us: int) -> datetime:
    """Microseconds since the epoch as Spark hands a TIMESTAMP back here (naive UTC), without float rounding."""
    return datetime(1970, 1, 1) + timedelta(microseconds=us)


def _flagged(**changes: Any) -> FlaggedSamples:
    """The contract's example with a third, non-finite sample (a failed reading keeps its NaN)."""
    fields = json.loads(_example("flagged_samples.json"))
    fields.update(
        sample_index=[3, 7, 9],
        t_raw_us=[*fields["t_raw_us"], 1795420800900000],
        t_us=[*fields["t_us"], 1795420800887500],
        v=[*fields["v"], float("nan")],
        quality=[*fields["quality"], "non_finite"],
    )
    return FlaggedSamples.model_validate({**fields, **changes})


def test_flagged_samples_become_one_row_per_sample(spark: SparkSession) -> None:
    flagged = _flagged()
    encoded = avro_codec.encode(flagged)
    kafka = _kafka(spark, "readings.flagged.v1", [encoded, encoded[:30], b"garbage"])
    decoded = transforms.decode(kafka, FlaggedSamples)
    rows = transforms.flagged_samples(transforms.records(decoded))
    _fits(spark, rows, BRONZE_FLAGGED_SAMPLES)
    got = rows.orderBy("sample_index").collect()
    assert [(r.sample_index, r.quality, r.t_us, r.t_raw_us) for r in got] == [
        (3, "out_of_range", 1795420800287500, 1795420800300000),
        (7, "spike", 1795420800687500, 1795420800700000),
        (9, "non_finite", 1795420800887500, 1795420800900000),
    ]
    assert [r.value for r in got[:2]] == [412.0, 20.8]
    assert math.isnan(got[2].value)
    assert [(r.t, r.t_raw) for r in got] == [(_utc(r.t_us), _utc(r.t_raw_us)) for r in got]
    # Every row carries its package's context and provenance unchanged.
    assert {
        (
            r.package_id,
            r.sensor_id,
            r.asset_id,
            r.site,
            r.quantity,
            r.unit,
            r.gateway_id,
            r.clock_offset_ms,
            r.source_partition,
            r.source_offset,
            r.received_at,
            r.processed_at,
            r.kafka_partition,
            r.kafka_offset,
            r.received_date,
        )
        for r in got
    } == {
        (
            str(flagged.package_id),
            str(flagged.sensor_id),
            "press-01",
            "plant-a",
            "temperature",
            "degC",
            "gw-plant-a-01",
            -12.5,
            2,
            4712,
            datetime(2026, 11, 23, 8, 0, 1, 31000),
            datetime(2026, 11, 23, 8, 0, 1, 52000),
            2,
            100,
            datetime(2026, 11, 23).date(),
        )
    }
    quarantined = transforms.undecodable(decoded, FlaggedSamples)
    _fits(spark, quarantined, BRONZE_DEADLETTER)
    assert [(r.source_topic, r.source_offset, r.detail) for r in quarantined.orderBy("source_offset").collect()] == [
        ("readings.flagged.v1", 101, "not a FlaggedSamples Avro record (FlaggedSamples schema)"),
        ("readings.flagged.v1", 102, "not a FlaggedSamples Avro record (FlaggedSamples schema)"),
    ]


def test_flagged_samples_land_once_however_often_they_come(spark: SparkSession, lake_root: str) -> None:
    lake = LakeSettings(root=lake_root, register_in_trino=False)  # on MinIO, where Delta commits as in production
    for table in (BRONZE_FLAGGED_SAMPLES, BRONZE_DEADLETTER):
        sinks.ensure(spark, table, lake.root)
    first, other = _flagged(), _flagged(package_id=str(uuid.uuid4()))
    topic = "readings.flagged.v1"
    # Offsets 100..103: `first` twice (a stream worker replayed it within the batch), `other`, a broken record.
    batch = _kafka(spark, topic, [avro_codec.encode(first), avro_codec.encode(first), avro_codec.encode(other), b"x"])
    writer.write_batch(spark, lake, "it-writer", batch, 0)
    writer.write_batch(spark, lake, "it-writer", batch, 0)  # Spark re-runs a batch whose commit it did not record
    # A later batch delivers `first` once more (a replay after a worker crash), at another position.
    replay = spark.createDataFrame([(b"k", avro_codec.encode(first), topic, 5, 900, APPENDED, 1)], KAFKA)
    writer.write_batch(spark, lake, "it-writer", replay, 1)

    landed = spark.read.format("delta").load(BRONZE_FLAGGED_SAMPLES.s3a(lake.root)).collect()
    assert sorted((r.package_id, r.sample_index, r.kafka_partition, r.kafka_offset) for r in landed) == sorted(
        [(str(first.package_id), i, 2, 100) for i in (3, 7, 9)]
        + [(str(other.package_id), i, 2, 102) for i in (3, 7, 9)]
    )
    dead = spark.read.format("delta").load(BRONZE_DEADLETTER.s3a(lake.root)).collect()
    assert [(r.source_topic, r.source_offset, r.stage) for r in dead] == [(topic, 103, "lake")]


def test_a_tombstone_retires_its_sensor_until_it_is_registered_again(spark: SparkSession, lake_root: str) -> None:
    lake = LakeSettings(root=lake_root, register_in_trino=False)  # on MinIO, where Delta commits as in production
    sinks.ensure(spark, SILVER_SENSORS, lake.root)
    example = SensorDescription.model_validate_json(_example("sensor_description.json"))  # updated 2026-11-20
    a, b = (example.model_copy(update={"sensor_id": uuid.uuid4()}) for _ in range(2))
    topic, later = "edge.metadata.v1", APPENDED + timedelta(hours=1)

    def message(sensor: SensorDescription, offset: int, wire: bytes | None, at: datetime = APPENDED) -> tuple[Any, ...]:
        return (str(sensor.sensor_id).encode(), wire, topic, 0, offset, at, 0)

    def states() -> dict[str, tuple[str, datetime, int]]:
        rows = spark.read.format("delta").load(SILVER_SENSORS.s3a(lake.root)).collect()
        return {r.sensor_id: (r.status, r.updated_at, r.kafka_offset) for r in rows}

    # a is described, then deleted; b is deleted and registered again in the same batch: only a retires.
    first = [
        message(a, 100, a.to_wire()),
        message(b, 101, None),
        message(b, 102, b.to_wire()),
        message(a, 103, None),
    ]
    for _ in range(2):  # Spark re-runs a batch whose commit it did not record: same outcome
        writer.write_batch(spark, lake, "it-writer", spark.createDataFrame(first, KAFKA), 0)
        assert states() == {
            str(a.sensor_id): ("retired", APPENDED.replace(tzinfo=None), 103),
            str(b.sensor_id): ("active", example.updated_at.replace(tzinfo=None), 102),
        }

    # a is registered again (a newer description); a replay of its old tombstone does not retire it again.
    again = a.model_copy(update={"updated_at": later})
    writer.write_batch(
        spark, lake, "it-writer", spark.createDataFrame([message(a, 200, again.to_wire(), later)], KAFKA), 1
    )
    writer.write_batch(spark, lake, "it-writer", spark.createDataFrame([message(a, 103, None)], KAFKA), 2)
    assert states()[str(a.sensor_id)] == ("active", later.replace(tzinfo=None), 200)
