"""Every Kafka topic Vigil uses, declared once.

`make up` creates missing topics and brings the config of existing ones in
line with this table (partitions only ever grow: Kafka cannot shrink them).

The three topics keyed by sensor UUID that the stream stage reads together
(packages, metadata, parked) have the same partition count, and every producer
uses the murmur2 partitioner (Kafka's Java and aiokafka default), so one
sensor's packages, metadata and parked packages share a partition number: the
stream joins them in per-partition state without a repartition.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

DAY_MS: Final = 24 * 3600 * 1000
MAX_INPUT_BYTES: Final = 1024 * 1024
"""Largest message on a topic gateways write to (Kafka's own default, declared so the stream checks the same)."""
MAX_OUTPUT_BYTES: Final = 4 * 1024 * 1024
"""Largest message the stream writes: a dead letter or parked package carries an input of up to
MAX_INPUT_BYTES (base64 in the parked table: 4/3 of it), and a clean record of MAX_SAMPLES (100,000) samples
is at most ~2.9 MB (two varint times of up to 10 bytes, a double and a quality byte per sample)."""


class ValueFormat(StrEnum):
    JSON_LD = "json-ld"  # UTF-8 JSON, compact JSON-LD with a Vigil @context
    JSON = "json"  # UTF-8 JSON validated by a pydantic contract
    AVRO = "avro"  # Avro binary (schemaless: the schema is versioned in contracts/avro)


class CleanupPolicy(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


class TopicSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    partitions: int = Field(ge=1)
    retention_ms: int = Field(description="-1 keeps forever")
    cleanup_policy: CleanupPolicy
    value_format: ValueFormat
    key: str = Field(description="what the message key holds")
    value_contract: str = Field(description="contracts model (and Avro schema) of the value")
    description: str
    log_append_time: bool = Field(
        default=False, description="stamp records with the broker's clock instead of the producer's"
    )
    max_message_bytes: int | None = Field(default=None, gt=0, description="None keeps the broker's default")

    def kafka_config(self) -> dict[str, str]:
        config = {"cleanup.policy": self.cleanup_policy.value, "retention.ms": str(self.retention_ms)}
        if self.log_append_time:
            config["message.timestamp.type"] = "LogAppendTime"
        if self.max_message_bytes is not None:
            config["max.message.bytes"] = str(self.max_message_bytes)
        if self.cleanup_policy is CleanupPolicy.COMPACT:
            # Compact promptly so a restarted consumer replays little more than the latest per key.
            config["min.cleanable.dirty.ratio"] = "0.1"
            config["segment.ms"] = str(DAY_MS)
        return config


TOPICS: Final[tuple[TopicSpec, ...]] = (
    TopicSpec(
        name="edge.packages.v1",
        partitions=6,
        retention_ms=7 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        value_format=ValueFormat.JSON_LD,
        key="sensor UUID",
        value_contract="EdgePackage",
        description="Sensor data packages as sent by gateways (raw samples, smart data or claim checks).",
        # The clock stage estimates a gateway's clock error against the broker's clock, not the gateway's own.
        log_append_time=True,
        max_message_bytes=MAX_INPUT_BYTES,
    ),
    TopicSpec(
        name="edge.metadata.v1",
        partitions=6,
        retention_ms=-1,
        cleanup_policy=CleanupPolicy.COMPACT,
        value_format=ValueFormat.JSON_LD,
        key="sensor UUID",
        value_contract="SensorDescription",
        description="Latest metadata and context per sensor (compacted; null value = sensor retired).",
        max_message_bytes=MAX_INPUT_BYTES,
    ),
    TopicSpec(
        name="edge.deadletter.v1",
        partitions=3,
        retention_ms=30 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        value_format=ValueFormat.AVRO,
        key="source key (as received)",
        value_contract="DeadLetter",
        description="Rejected input with its original bytes, a reason code and where it came from.",
        max_message_bytes=MAX_OUTPUT_BYTES,
    ),
    TopicSpec(
        name="edge.parked.v1",
        partitions=6,
        retention_ms=30 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        value_format=ValueFormat.JSON_LD,
        key="sensor UUID",
        value_contract="EdgePackage",
        description="Valid packages whose sensor has no metadata yet; re-processed when it arrives.",
        max_message_bytes=MAX_OUTPUT_BYTES,
    ),
    TopicSpec(
        name="readings.clean.v1",
        partitions=6,
        retention_ms=7 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        value_format=ValueFormat.AVRO,
        key="sensor UUID",
        value_contract="CleanReadingBatch",
        description="Validated, time-corrected, quality-coded and enriched readings, one record per package.",
        max_message_bytes=MAX_OUTPUT_BYTES,
    ),
    TopicSpec(
        name="readings.flagged.v1",
        partitions=6,
        retention_ms=7 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        value_format=ValueFormat.AVRO,
        key="sensor UUID",
        value_contract="FlaggedSamples",
        description="The samples the quality stage kept out of a package's clean record, each with its code; "
        "one record per package that has any.",
        max_message_bytes=MAX_OUTPUT_BYTES,
    ),
    TopicSpec(
        name="alerts.v1",
        partitions=3,
        retention_ms=30 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        value_format=ValueFormat.AVRO,
        key="asset id",
        value_contract="Alert",
        description="Alert episodes (open and close) for downstream apps.",
        max_message_bytes=MAX_OUTPUT_BYTES,
    ),
    TopicSpec(
        name="audit.v1",
        partitions=1,
        retention_ms=90 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        value_format=ValueFormat.AVRO,
        key="principal",
        value_contract="AuditEvent",
        description="One event per REST broker request: who, what topic, when, outcome, size (never the data).",
    ),
)

BY_NAME: Final[dict[str, TopicSpec]] = {t.name: t for t in TOPICS}
