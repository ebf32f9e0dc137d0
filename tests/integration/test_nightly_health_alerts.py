"""The nightly health alerts by real Spark over gold tables on MinIO, sent to the real alerts.v1: a machine that
turns unhealthy opens one episode, and the day it is healthy again closes it; re-runs send nothing twice.

Scores come from crafted gold.daily_sensor_stats rows: four machines of one site, one temperature sensor each,
alike in every feature, except that the test machine's kurtosis and crest factor are far off on its bad days
(against its peers: the test asks for more days of history than it writes, so the sick days never become the
machine's own normal).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from pyspark.sql import SparkSession

from contracts import Alert, AlertState, Severity
from contracts import avro as avro_codec
from infra.settings import InfraSettings
from jobs.lake import sinks
from jobs.nightly.run import _health
from jobs.nightly.settings import NightlySettings
from jobs.nightly.tables import DAILY_SENSOR_STATS, HEALTH_SCORES
from tests.kafka_keyed import ends, read_keyed

pytestmark = pytest.mark.integration
DAY = date(2001, 3, 5)
NORMAL = {"mean": 40.0, "std": 0.5, "rms": 40.0, "p95": 41.0, "kurtosis": 0.0, "crest_factor": 1.1}
SICK = {**NORMAL, "kurtosis": 30.0, "crest_factor": 9.0}


@pytest.fixture
def site() -> str:
    return f"it-health-{uuid.uuid4().hex[:8]}"


def _stats(spark: SparkSession, root: str, site: str, day: date, sick: bool) -> None:
    """One day of the four machines' sensor stats; machine m-0 is the one that may be sick."""
    schema = spark.read.format("delta").load(DAILY_SENSOR_STATS.s3a(root)).schema
    rows = []
    for i in range(4):
        features = SICK if sick and i == 0 else NORMAL
        values: dict[str, Any] = {
            "sensor_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{site}/m-{i}")),
            "asset_id": f"m-{i}",
            "site": site,
            "quantity": "temperature",
            "unit": "degC",
            "samples": 1000,
            "graded_samples": 1000,
            "missing_samples": 0,
            "packages": 1,
            "date": day,
            **features,
        }
        rows.append(tuple(values.get(f.name) for f in schema.fields))
    spark.createDataFrame(rows, schema).write.format("delta").mode("append").save(DAILY_SENSOR_STATS.s3a(root))


def _scores(spark: SparkSession, root: str, site: str, day: date) -> dict[str, Any]:
    frame = spark.read.format("delta").load(HEALTH_SCORES.s3a(root))
    rows = frame.where(f"site = '{site}' AND asset_id = 'm-0' AND date = '{day}'").collect()
    assert len(rows) == 1
    return rows[0].asDict()


def _alerts(platform: InfraSettings, start: dict[int, int]) -> list[Alert]:
    bootstrap = platform.kafka_bootstrap
    records = read_keyed(bootstrap, "alerts.v1", start, ends(bootstrap, "alerts.v1"), {b"m-0"})
    return [avro_codec.decode(Alert, value) for _key, value in records]


def test_an_unhealthy_machine_opens_one_episode_and_closes_it_when_healthy_again(
    spark: SparkSession, platform: InfraSettings, lake_root: str, site: str
) -> None:
    nightly = NightlySettings(min_history_days=10)  # against peers on every day: the machine's own days stay apart
    for table in (DAILY_SENSOR_STATS, HEALTH_SCORES):
        sinks.ensure(spark, table, lake_root)
    start = ends(platform.kafka_bootstrap, "alerts.v1")
    days = [DAY + timedelta(days=i) for i in range(4)]
    for day, sick in zip(days, (True, True, False, False), strict=True):
        _stats(spark, lake_root, site, day, sick)
        _health(spark, platform, nightly, lake_root, day)
    _health(spark, platform, nightly, lake_root, days[2])  # a re-run of the closing day sends nothing again

    mine = [a for a in _alerts(platform, start) if a.site == site]
    assert [(a.state, a.window_start.date()) for a in mine] == [(AlertState.OPEN, days[0]), (AlertState.CLOSE, days[2])]
    opened, closed = mine
    assert opened.rule == closed.rule == "health_score"
    assert opened.severity is Severity.CRITICAL  # a score of about 4
    assert closed.severity is Severity.INFO
    assert closed.episode_id == opened.episode_id == opened.alert_id
    assert closed.value is not None
    assert closed.value >= nightly.healthy_again_at

    rows = [_scores(spark, lake_root, site, day) for day in days]
    assert [(r["healthy"], r["alert_raised"], r["alert_closed"]) for r in rows] == [
        (False, True, False),
        (False, False, False),
        (True, False, True),
        (True, False, False),
    ]
    assert [r["episode_id"] for r in rows] == [str(opened.episode_id), str(opened.episode_id), None, None]
    assert [r["alert_id"] for r in rows] == [str(opened.alert_id), None, str(closed.alert_id), None]


def test_a_table_from_before_episodes_gains_the_columns_and_its_open_alert_is_closed(
    spark: SparkSession, platform: InfraSettings, lake_root: str, site: str
) -> None:
    # gold.health_scores as the nightly batch wrote it before it recorded episodes, with a raised alert.
    legacy_ddl = HEALTH_SCORES.ddl.replace("alert_closed BOOLEAN NOT NULL, episode_id STRING,", "")
    assert "episode_id" not in legacy_ddl
    columns = " ".join(legacy_ddl.split())
    spark.sql(f"CREATE TABLE delta.`{HEALTH_SCORES.s3a(lake_root)}` ({columns}) USING DELTA PARTITIONED BY (date)")
    raised = str(uuid.uuid4())
    before = DAY - timedelta(days=1)
    legacy = (
        "m-0", site, None, 4.0, 1, False, "peers", str(uuid.uuid4()), "temperature", "kurtosis", 10.0, None, 1,
        True, raised, before,
    )  # fmt: skip
    schema = spark.read.format("delta").load(HEALTH_SCORES.s3a(lake_root)).schema
    spark.createDataFrame([legacy], schema).write.format("delta").mode("append").save(HEALTH_SCORES.s3a(lake_root))
    sinks.ensure(spark, DAILY_SENSOR_STATS, lake_root)
    start = ends(platform.kafka_bootstrap, "alerts.v1")

    _stats(spark, lake_root, site, DAY, sick=False)
    _health(spark, platform, NightlySettings(), lake_root, DAY)

    mine = [a for a in _alerts(platform, start) if a.site == site]
    assert [(a.state, str(a.episode_id)) for a in mine] == [(AlertState.CLOSE, raised)]
    today = _scores(spark, lake_root, site, DAY)
    assert today["alert_closed"] is True
    assert today["episode_id"] is None
    assert _scores(spark, lake_root, site, before)["episode_id"] is None  # older rows read null
