"""The nightly batch's lake steps by real Spark over Delta tables on MinIO: the ledger (with Kafka's real
offsets), the daily sensor statistics and the maintenance (compaction, retention, vacuum).

Each test uses a lake root of its own under the `lake` bucket, and a day long before any message in
Kafka, so every topic counts 0 messages that day and the lake side alone decides the ledger's statuses.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from contracts import Alert
from infra import minio
from infra.settings import InfraSettings
from jobs.lake import sinks
from jobs.lake.tables import BRONZE_FLAGGED_SAMPLES, BUCKET, SILVER_PACKAGES, SILVER_READINGS, Table
from jobs.nightly.ledger import CHECKS, ledger_rows
from jobs.nightly.maintenance import maintain
from jobs.nightly.run import _send as send_health_alerts
from jobs.nightly.stats import daily_sensor_stats
from tests.kafka_keyed import ends, read_keyed, refusing_writes

pytestmark = pytest.mark.integration
ALERT_EXAMPLE = Path(__file__).resolve().parents[2] / "contracts" / "examples" / "alert.json"
DAY = date(2001, 2, 3)
COLUMNS = ("topic", "table_name", "kafka_messages", "table_rows", "difference", "status", "note", "date")


@pytest.fixture
def root(lake_root: str) -> str:
    return lake_root


def _ledger(spark: SparkSession, platform: InfraSettings, root: str) -> dict[str, dict[str, Any]]:
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in ledger_rows(spark, root, platform.kafka_bootstrap, DAY)]
    return {f"{r['topic']} -> {r['table_name']}": r for r in rows}


def _default(field: T.StructField, on: datetime) -> Any:
    kind = field.dataType
    if isinstance(kind, T.StringType):
        return "x"
    if isinstance(kind, T.IntegerType | T.LongType):
        return 0
    if isinstance(kind, T.DoubleType):
        return 0.0
    if isinstance(kind, T.TimestampType):
        return on
    if isinstance(kind, T.DateType):
        return on.date()
    if isinstance(kind, T.MapType):
        return {}
    raise TypeError(f"no default for {field}")


def _append(spark: SparkSession, table: Table, root: str, rows: list[dict[str, Any]]) -> None:
    """Rows of `table` at `root` in one file per partition: the given columns, every other one a plain value of its
    type (times: noon of DAY unless `processed_at` is given)."""
    sinks.ensure(spark, table, root)
    schema = spark.read.format("delta").load(table.s3a(root)).schema
    full = []
    for row in rows:
        on = row.get("processed_at", datetime.combine(DAY, time(12), tzinfo=UTC))
        full.append(tuple(row[f.name] if f.name in row else _default(f, on) for f in schema.fields))
    frame = spark.createDataFrame(full, schema).coalesce(1)
    frame.write.format("delta").mode("append").save(table.s3a(root))


def test_a_lake_without_tables_gives_every_row_not_a_failure(
    spark: SparkSession, platform: InfraSettings, root: str
) -> None:
    ledger = _ledger(spark, platform, root)
    assert len(ledger) == len(CHECKS) + 3  # the topic checks, the two sample checks, the lake's quarantine
    for check in CHECKS:
        row = ledger[f"{check.topic} -> {check.table.qualified}"]
        assert (row["kafka_messages"], row["table_rows"], row["status"]) == (0, 0, "ok")
        assert row["note"].startswith("table not created yet")
    assert all(r["table_rows"] == 0 and r["date"] == DAY for r in ledger.values())


def test_flagged_samples_are_checked_against_the_dropped_counts(
    spark: SparkSession, platform: InfraSettings, root: str
) -> None:
    other_day = datetime(2001, 2, 4, 0, 0, 1, tzinfo=UTC)  # just past DAY: not counted
    packages = [
        {"package_id": "p1", "ok_samples": 3, "dropped": {"spike": 2, "stuck": 1}},
        {"package_id": "p2", "ok_samples": 2, "dropped": {"out_of_range": 1}},
        {"package_id": "p3", "ok_samples": 4, "dropped": {}},
        {"package_id": "p-next-day", "ok_samples": 1, "dropped": {"spike": 5}, "processed_at": other_day},
    ]
    _append(spark, SILVER_PACKAGES, root, packages)
    _append(spark, SILVER_READINGS, root, [{"package_id": "p", "sample_index": i} for i in range(9)])
    flagged = [("p1", 0, "spike"), ("p1", 5, "spike"), ("p1", 6, "stuck"), ("p2", 2, "out_of_range")]
    _append(
        spark, BRONZE_FLAGGED_SAMPLES, root, [{"package_id": p, "sample_index": i, "quality": q} for p, i, q in flagged]
    )
    _append(spark, BRONZE_FLAGGED_SAMPLES, root, [{"package_id": "p-next-day", "processed_at": other_day}] * 5)

    ledger = _ledger(spark, platform, root)
    samples = ledger[f"readings.clean.v1 -> {SILVER_READINGS.qualified}"]
    outliers = ledger[f"readings.clean.v1 -> {BRONZE_FLAGGED_SAMPLES.qualified}"]
    assert (samples["kafka_messages"], samples["table_rows"], samples["status"]) == (9, 9, "ok")
    assert (outliers["kafka_messages"], outliers["table_rows"], outliers["status"]) == (4, 4, "ok")
    assert "dropped" in outliers["note"]

    # A clean package that declares a refused sample whose flagged record never landed shows as missing.
    _append(spark, SILVER_PACKAGES, root, [{"package_id": "p4", "ok_samples": 0, "dropped": {"non_finite": 1}}])
    outliers = _ledger(spark, platform, root)[f"readings.clean.v1 -> {BRONZE_FLAGGED_SAMPLES.qualified}"]
    assert (outliers["kafka_messages"], outliers["table_rows"], outliers["difference"]) == (5, 4, -1)
    assert outliers["status"] == "missing"


def test_a_sensor_with_only_flagged_samples_gets_a_row_and_its_drops_count(spark: SparkSession, root: str) -> None:
    noon = datetime.combine(DAY, time(12), tzinfo=UTC)
    next_day = noon + timedelta(days=1)
    a = {"sensor_id": "A", "asset_id": "press-a", "site": "s1", "quantity": "temperature", "unit": "degC"}
    b = {"sensor_id": "B", "asset_id": "press-b", "site": "s1", "quantity": "vibration", "unit": "mm/s"}
    _append(
        spark,
        SILVER_PACKAGES,
        root,
        [
            {**a, "package_id": "a1", "first_t": noon, "ok_samples": 3, "dropped": {"spike": 1}},
            # All flagged: no clean sample, so no first_t; dated by its first flagged sample.
            {**b, "package_id": "b1", "first_t": None, "last_t": None, "ok_samples": 0, "dropped": {"stuck": 4}},
            # Its flagged samples are on the next day: not graded on DAY.
            {**b, "package_id": "b2", "first_t": None, "last_t": None, "ok_samples": 0, "dropped": {"stuck": 2}},
            # Smart-data features only: nothing to grade.
            {**b, "package_id": "b3", "first_t": None, "last_t": None, "ok_samples": 0, "dropped": {}},
        ],
    )
    readings = [
        {**a, "package_id": "a1", "sample_index": i, "value": float(i + 1), "t": noon + timedelta(seconds=i)}
        for i in range(3)
    ]
    _append(spark, SILVER_READINGS, root, [{**r, "year": DAY.year, "month": DAY.month} for r in readings])

    # A young lake without bronze.flagged_samples: no crash, the clean sensor as before.
    assert [r.sensor_id for r in daily_sensor_stats(spark, root, DAY).collect()] == ["A"]

    morning = datetime.combine(DAY, time(8), tzinfo=UTC)
    flagged = [{**b, "package_id": "b1", "sample_index": i, "t": morning + timedelta(seconds=i)} for i in range(4)]
    flagged += [
        {**b, "package_id": "b2", "sample_index": i, "t": next_day + timedelta(seconds=i), "processed_at": next_day}
        for i in range(2)
    ]
    _append(spark, BRONZE_FLAGGED_SAMPLES, root, [{**f, "quality": "stuck"} for f in flagged])

    rows = {r.sensor_id: r.asDict() for r in daily_sensor_stats(spark, root, DAY).collect()}
    assert rows.keys() == {"A", "B"}
    dead = rows["B"]
    assert {k: dead[k] for k in b} == b
    assert (dead["samples"], dead["mean"], dead["rms"], dead["p95"]) == (0, None, None, None)
    assert (dead["share_stuck"], dead["share_ok"], dead["graded_samples"], dead["packages"]) == (1.0, 0.0, 4, 1)
    clean = rows["A"]
    assert {k: clean[k] for k in a} == a
    assert (clean["samples"], clean["mean"], clean["graded_samples"], clean["packages"]) == (3, 2.0, 4, 1)
    assert (clean["share_ok"], clean["share_spike"], clean["share_stuck"]) == (0.75, 0.25, 0.0)


def test_maintenance_compacts_the_day_and_deletes_rows_past_retention(
    spark: SparkSession, platform: InfraSettings, root: str
) -> None:
    table, path = BRONZE_FLAGGED_SAMPLES, BRONZE_FLAGGED_SAMPLES.s3a(root)
    old = datetime.combine(DAY - timedelta(days=40), time(12), tzinfo=UTC)
    for batch in range(3):  # three micro-batches of the day: three small files in its partition
        _append(spark, table, root, [{"package_id": f"p{batch}", "sample_index": i} for i in range(4)])
    _append(spark, table, root, [{"package_id": "old", "processed_at": old, "received_date": old.date()}] * 2)

    def files_of(day: date) -> int:
        return sum(f"received_date={day.isoformat()}" in f for f in spark.read.format("delta").load(path).inputFiles())

    assert files_of(DAY) == 3
    # A table that would let VACUUM delete unreferenced files at once: the retention passed in must win.
    spark.sql(
        f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.deletedFileRetentionDuration' = 'interval 0 hours')"
    )

    done = maintain(spark, root, DAY, {table.qualified: 30}, vacuum_retain_hours=168)

    cutoff = DAY - timedelta(days=30)
    assert [line for line in done if line.startswith(table.qualified)] == [
        f"{table.qualified}: compacted 3 files into 1; rows before {cutoff} deleted; "
        "vacuumed (files unreferenced for 168 h)"
    ]
    assert sum("not created yet, skipped" in line for line in done) == len(done) - 1  # the only table at this root
    assert files_of(DAY) == 1
    rows = spark.read.format("delta").load(path)
    assert rows.where(f"received_date = '{DAY}'").count() == 12  # compaction keeps every row
    assert rows.where(f"received_date = '{old.date()}'").count() == 0  # retention deletes the old day
    # VACUUM kept the files compaction and retention unreferenced minutes ago (168 h have not passed):
    # 3 small files of the day + their compacted file, and the old day's file.
    prefix = path.removeprefix(f"s3a://{BUCKET}/")
    stored = [o.object_name for o in minio.client(platform).list_objects(BUCKET, prefix=f"{prefix}/", recursive=True)]
    assert sum(name.endswith(".parquet") and f"received_date={DAY.isoformat()}" in name for name in stored) == 4


def test_a_health_alert_the_broker_refuses_fails_the_run(platform: InfraSettings) -> None:
    # The run records alert_raised only after _send returns: a refused alert must raise, so the re-run sends it.
    alert = Alert.model_validate_json(ALERT_EXAMPLE.read_bytes())
    alert = alert.model_copy(update={"alert_id": uuid.uuid4(), "asset_id": f"it-nightly-{uuid.uuid4().hex[:6]}"})
    with refusing_writes(platform.kafka_bootstrap, "alerts.v1"), pytest.raises(RuntimeError, match="1 of 1 health"):
        send_health_alerts(platform, [alert])
    before = ends(platform.kafka_bootstrap, "alerts.v1")
    send_health_alerts(platform, [alert])  # taken again: sent
    after = ends(platform.kafka_bootstrap, "alerts.v1")
    assert len(read_keyed(platform.kafka_bootstrap, "alerts.v1", before, after, {alert.asset_id.encode()})) == 1
