"""Dead-letter records on `edge.deadletter.v1`: rejected input, kept byte for byte."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from contracts._base import Contract, UtcDatetime


class ReasonCode(StrEnum):
    """Why a message was rejected. Stable: tables and dashboards group by it."""

    MALFORMED_JSON = "malformed_json"  # not UTF-8 JSON, or not a JSON object
    UNKNOWN_CONTEXT = "unknown_context"  # @context missing or not a version Vigil ships
    SCHEMA_VIOLATION = "schema_violation"  # a field is missing, of the wrong type or out of bounds
    NON_FINITE_VALUE = "non_finite_value"  # NaN or Infinity where a number is required
    LENGTH_MISMATCH = "length_mismatch"  # samples.t and samples.v differ in length
    TIME_NOT_MONOTONIC = "time_not_monotonic"  # sample times do not strictly increase
    FUTURE_TIMESTAMP = "future_timestamp"  # times too far ahead of the broker's clock
    OVERSIZED = "oversized"  # message or sample count above the limit
    DUPLICATE = "duplicate"  # package id already seen within the dedupe horizon
    BAD_ROW = "bad_row"  # a row of a dropped file could not be turned into a reading
    PROCESSING_ERROR = "processing_error"  # a stage failed unexpectedly; the message is kept for replay


class DeadLetter(Contract):
    reason: ReasonCode
    field: str | None = Field(default=None, description="dotted path of the offending field, if one")
    detail: str = Field(description="human-readable explanation")
    stage: str = Field(description="pipeline stage that rejected it, e.g. validate, dedupe, files")
    original: bytes = Field(description="the message value exactly as received")
    original_key: bytes | None = None
    source_topic: str
    source_partition: int = Field(ge=-1)
    source_offset: int = Field(ge=-1)
    source_timestamp: UtcDatetime | None = None
    rejected_at: UtcDatetime
    package_id: UUID | None = None
    gateway_id: str | None = None
