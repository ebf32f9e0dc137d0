"""Every Delta table of the lake: its Trino name, storage location, Spark schema and partitioning.

This module is the one place a table's shape is declared. Writers create tables
from it, Trino registers them from it, and `docs/queries.md` documents it.
Times are Spark `TIMESTAMP` (UTC instants, microseconds in the files; Trino shows
them as `timestamp(3) with time zone`), so the exact microseconds are also kept
as `*_us` BIGINT columns where they matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

BUCKET: Final = "lake"


def trino_root(root: str) -> str:
    """A lake root as Trino names it (`s3://`) from the root Spark writes to (`s3a://`)."""
    return "s3://" + root.removeprefix("s3a://")


@dataclass(frozen=True)
class Table:
    schema: str  # Trino schema: bronze, silver or gold
    name: str
    ddl: str  # Spark DDL of the columns
    partitioned_by: tuple[str, ...] = ()
    doc: str = ""

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def s3a(self, root: str = f"s3a://{BUCKET}") -> str:
        """Location for Spark (Hadoop S3A)."""
        return f"{root}/{self.schema}/{self.name}"

    def s3(self, root: str = f"s3://{BUCKET}") -> str:
        """The same location for Trino (native S3 file system)."""
        return f"{root}/{self.schema}/{self.name}"


BRONZE_PACKAGES: Final = Table(
    "bronze",
    "packages",
    """
    kafka_topic STRING NOT NULL, kafka_partition INT NOT NULL, kafka_offset BIGINT NOT NULL,
    kafka_timestamp TIMESTAMP NOT NULL, key BINARY, value BINARY,
    package_id STRING, gateway_id STRING, sensor_id STRING,
    ingest_date DATE NOT NULL
    """,
    ("ingest_date",),
    "Every message of edge.packages.v1 as received (value = the unaltered bytes); ids parsed when the JSON allows.",
)

BRONZE_DEADLETTER: Final = Table(
    "bronze",
    "deadletter",
    """
    reason STRING NOT NULL, field STRING, detail STRING NOT NULL, stage STRING NOT NULL,
    original BINARY NOT NULL, original_key BINARY,
    source_topic STRING NOT NULL, source_partition INT NOT NULL, source_offset BIGINT NOT NULL,
    source_timestamp TIMESTAMP, rejected_at TIMESTAMP NOT NULL,
    package_id STRING, gateway_id STRING,
    kafka_partition INT NOT NULL, kafka_offset BIGINT NOT NULL, kafka_timestamp TIMESTAMP NOT NULL,
    rejected_date DATE NOT NULL
    """,
    ("rejected_date",),
    "Quarantine: edge.deadletter.v1, each rejected message with its reason code and original bytes.",
)

SILVER_READINGS: Final = Table(
    "silver",
    "readings",
    """
    package_id STRING NOT NULL, sample_index INT NOT NULL,
    sensor_id STRING NOT NULL, asset_id STRING NOT NULL, site STRING NOT NULL,
    location_on_machine STRING NOT NULL, quantity STRING NOT NULL, unit STRING NOT NULL,
    value DOUBLE NOT NULL, quality STRING NOT NULL,
    t TIMESTAMP NOT NULL, t_us BIGINT NOT NULL, t_raw TIMESTAMP NOT NULL, t_raw_us BIGINT NOT NULL,
    gateway_id STRING NOT NULL, clock_source STRING NOT NULL, clock_offset_ms DOUBLE NOT NULL,
    source_partition INT NOT NULL, source_offset BIGINT NOT NULL,
    received_at TIMESTAMP NOT NULL, processed_at TIMESTAMP NOT NULL,
    year INT NOT NULL, month INT NOT NULL
    """,
    ("asset_id", "year", "month"),
    "One row per clean sample of readings.clean.v1; (package_id, sample_index) is unique.",
)

SILVER_PACKAGES: Final = Table(
    "silver",
    "packages",
    """
    package_id STRING NOT NULL, gateway_id STRING NOT NULL, sensor_id STRING NOT NULL,
    asset_id STRING NOT NULL, site STRING NOT NULL, quantity STRING NOT NULL, unit STRING NOT NULL,
    clock_source STRING NOT NULL, clock_offset_ms DOUBLE NOT NULL,
    first_t TIMESTAMP, last_t TIMESTAMP,
    ok_samples INT NOT NULL, dropped MAP<STRING, BIGINT> NOT NULL, missing_samples BIGINT NOT NULL,
    features MAP<STRING, DOUBLE> NOT NULL, claim_uri STRING,
    source_partition INT NOT NULL, source_offset BIGINT NOT NULL,
    received_at TIMESTAMP NOT NULL, processed_at TIMESTAMP NOT NULL,
    kafka_partition INT NOT NULL, kafka_offset BIGINT NOT NULL,
    received_date DATE NOT NULL
    """,
    ("received_date",),
    "One row per clean package: sample counts by quality code (dropped), gaps, smart-data features, claim checks. "
    "Also the dedupe index of silver.readings.",
)

BRONZE_FLAGGED_SAMPLES: Final = Table(
    "bronze",
    "flagged_samples",
    """
    package_id STRING NOT NULL, sample_index INT NOT NULL,
    sensor_id STRING NOT NULL, asset_id STRING NOT NULL, site STRING NOT NULL,
    quantity STRING NOT NULL, unit STRING NOT NULL,
    quality STRING NOT NULL, value DOUBLE NOT NULL,
    t TIMESTAMP NOT NULL, t_us BIGINT NOT NULL, t_raw TIMESTAMP NOT NULL, t_raw_us BIGINT NOT NULL,
    gateway_id STRING NOT NULL, clock_offset_ms DOUBLE NOT NULL,
    source_partition INT NOT NULL, source_offset BIGINT NOT NULL,
    received_at TIMESTAMP NOT NULL, processed_at TIMESTAMP NOT NULL,
    kafka_partition INT NOT NULL, kafka_offset BIGINT NOT NULL,
    received_date DATE NOT NULL
    """,
    ("received_date",),
    "One row per sample the quality stage kept out of the clean stream (readings.flagged.v1), with its quality "
    "code and its value as sent; sample_index is its position in the package as sent, (package_id, sample_index) "
    "is unique.",
)

SILVER_ALERTS: Final = Table(
    "silver",
    "alerts",
    """
    alert_id STRING NOT NULL, episode_id STRING NOT NULL, state STRING NOT NULL,
    asset_id STRING NOT NULL, site STRING, sensor_id STRING, gateway_id STRING,
    rule STRING NOT NULL, severity STRING NOT NULL, source STRING NOT NULL, message STRING NOT NULL,
    value DOUBLE, threshold DOUBLE,
    window_start TIMESTAMP NOT NULL, window_end TIMESTAMP NOT NULL, raised_at TIMESTAMP NOT NULL,
    kafka_partition INT NOT NULL, kafka_offset BIGINT NOT NULL
    """,
    (),
    "alerts.v1: every open and close of an alert episode (stream rules and the nightly health check).",
)

SILVER_SENSORS: Final = Table(
    "silver",
    "sensors",
    """
    sensor_id STRING NOT NULL, label MAP<STRING, STRING> NOT NULL,
    quantity STRING NOT NULL, unit STRING NOT NULL, sampling_rate_hz DOUBLE NOT NULL,
    range_min DOUBLE NOT NULL, range_max DOUBLE NOT NULL,
    warning_low DOUBLE, warning_high DOUBLE, critical_low DOUBLE, critical_high DOUBLE,
    machine_id STRING NOT NULL, machine_label MAP<STRING, STRING> NOT NULL, machine_kind STRING,
    location_on_machine STRING NOT NULL, site STRING NOT NULL, purpose STRING, status STRING NOT NULL,
    updated_at TIMESTAMP NOT NULL, document STRING NOT NULL,
    kafka_partition INT NOT NULL, kafka_offset BIGINT NOT NULL
    """,
    (),
    "Current metadata and context per sensor from edge.metadata.v1 (latest wins); document = the JSON-LD as sent.",
)

BRONZE_AUDIT: Final = Table(
    "bronze",
    "audit",
    """
    event_id STRING NOT NULL, at TIMESTAMP NOT NULL, request_id STRING NOT NULL,
    principal STRING, token_id STRING, role STRING, client STRING NOT NULL,
    method STRING NOT NULL, route STRING NOT NULL, topic STRING, status INT NOT NULL, outcome STRING NOT NULL,
    reason STRING, request_bytes BIGINT NOT NULL, messages INT NOT NULL, duration_ms DOUBLE NOT NULL,
    kafka_partition INT NOT NULL, kafka_offset BIGINT NOT NULL,
    audit_date DATE NOT NULL
    """,
    ("audit_date",),
    "audit.v1: one row per REST broker request (who, what topic, when, outcome, size; never the data).",
)

STREAMED: Final = (
    BRONZE_PACKAGES,
    BRONZE_DEADLETTER,
    BRONZE_AUDIT,
    SILVER_READINGS,
    SILVER_PACKAGES,
    BRONZE_FLAGGED_SAMPLES,
    SILVER_ALERTS,
    SILVER_SENSORS,
)
