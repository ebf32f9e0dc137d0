"""The gold tables the nightly batch writes (same `Table` declaration as the lake writer's)."""

from __future__ import annotations

from typing import Final

from contracts import QualityCode
from jobs.lake.tables import Table

QUALITY_SHARES: Final = tuple(f"share_{code.value}" for code in QualityCode)

DAILY_SENSOR_STATS: Final = Table(
    "gold",
    "daily_sensor_stats",
    """
    sensor_id STRING NOT NULL, asset_id STRING NOT NULL, site STRING NOT NULL,
    quantity STRING NOT NULL, unit STRING NOT NULL,
    samples BIGINT NOT NULL, min DOUBLE, max DOUBLE, mean DOUBLE, std DOUBLE, rms DOUBLE,
    p50 DOUBLE, p95 DOUBLE, p99 DOUBLE, kurtosis DOUBLE, crest_factor DOUBLE,
    """
    + ", ".join(f"{name} DOUBLE" for name in QUALITY_SHARES)
    + """,
    graded_samples BIGINT NOT NULL, missing_samples BIGINT NOT NULL, packages BIGINT NOT NULL,
    date DATE NOT NULL
    """,
    ("date",),
    "Per sensor and UTC day: statistics of the clean samples, shares of each quality code, gaps.",
)

HEALTH_SCORES: Final = Table(
    "gold",
    "health_scores",
    """
    asset_id STRING NOT NULL, site STRING NOT NULL, machine_kind STRING,
    score DOUBLE NOT NULL, rank INT NOT NULL, healthy BOOLEAN NOT NULL, basis STRING NOT NULL,
    worst_sensor_id STRING NOT NULL, worst_quantity STRING NOT NULL, worst_feature STRING NOT NULL,
    deviation DOUBLE NOT NULL, rms_trend_per_day DOUBLE, sensors INT NOT NULL,
    alert_raised BOOLEAN NOT NULL, alert_id STRING, alert_closed BOOLEAN NOT NULL, episode_id STRING,
    date DATE NOT NULL
    """,
    ("date",),
    "Per machine and day: health 0..100 (100 = like its history and its peers), rank in its site (1 = worst).",
)

PIPELINE_LEDGER: Final = Table(
    "gold",
    "pipeline_ledger",
    """
    topic STRING NOT NULL, table_name STRING NOT NULL, kafka_messages BIGINT, table_rows BIGINT NOT NULL,
    difference BIGINT, status STRING NOT NULL, note STRING NOT NULL,
    date DATE NOT NULL
    """,
    ("date",),
    "Per day and topic: messages in Kafka against rows landed in the lake, so a loss shows (and where).",
)

GOLD: Final = (DAILY_SENSOR_STATS, HEALTH_SCORES, PIPELINE_LEDGER)
