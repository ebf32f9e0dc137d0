"""Clean reading batches on `readings.clean.v1`: one record per accepted package."""

from __future__ import annotations

from enum import StrEnum
from typing import Self
from uuid import UUID

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from contracts._base import AssetId, Contract, GatewayId, UtcDatetime
from contracts.metadata import Quantity


class QualityCode(StrEnum):
    """Per-sample quality. Only `ok` samples travel in the clean stream; the rest are counted."""

    OK = "ok"
    OUT_OF_RANGE = "out_of_range"
    NON_FINITE = "non_finite"
    SPIKE = "spike"
    STUCK = "stuck"


class ClockSource(StrEnum):
    NTP = "ntp"  # offset reported by the gateway
    ESTIMATED = "estimated"  # offset estimated from broker append times
    NONE = "none"  # no correction applied


class CleanReadingBatch(Contract):
    package_id: UUID
    gateway_id: GatewayId
    sensor_id: UUID
    asset_id: AssetId
    site: str
    location_on_machine: str
    quantity: Quantity
    unit: str = Field(description="canonical unit of the quantity")
    clock_source: ClockSource
    clock_offset_ms: float = Field(description="correction applied: t_us = t_raw_us + offset")
    t_raw_us: list[int] = Field(description="sample times on the gateway clock, µs since epoch")
    t_us: list[int] = Field(description="corrected sample times (UTC), µs since epoch")
    v: list[float] = Field(description="values in the canonical unit")
    quality: list[QualityCode]
    dropped: dict[str, int] = Field(default_factory=dict, description="samples left out, by quality code")
    features: dict[str, float] = Field(default_factory=dict, description="smart-data features sent by the edge")
    claim_uri: str | None = Field(default=None, description="claim-check reference of a large raw payload")
    missing_samples: int = Field(ge=0, description="samples missing against the declared sampling rate")
    source_topic: str
    source_partition: int
    source_offset: int
    received_at: UtcDatetime = Field(description="broker append time of the package")
    processed_at: UtcDatetime

    @model_validator(mode="after")
    def _columns_align(self) -> Self:
        n = len(self.v)
        if not (len(self.t_raw_us) == len(self.t_us) == len(self.quality) == n):
            raise PydanticCustomError("length_mismatch", "t_raw_us, t_us, v and quality must have equal lengths")
        return self


class FlaggedSamples(Contract):
    """The samples of one package that the quality stage kept out of the clean stream, each with its code.

    Outliers are flagged, not deleted: with this record every sample of a graded package is accounted for,
    `ok` in its `CleanReadingBatch` or here, and `sample_index` finds the sample in the package as sent
    (`bronze.packages`). Published only for packages with at least one flagged sample.
    """

    package_id: UUID
    gateway_id: GatewayId
    sensor_id: UUID
    asset_id: AssetId
    site: str
    quantity: Quantity
    unit: str = Field(description="canonical unit of the quantity")
    clock_offset_ms: float = Field(description="correction applied: t_us = t_raw_us + offset")
    sample_index: list[int] = Field(description="position of each sample in the package's samples, from 0")
    t_raw_us: list[int] = Field(description="sample times on the gateway clock, µs since epoch")
    t_us: list[int] = Field(description="corrected sample times (UTC), µs since epoch")
    v: list[float] = Field(description="values in the canonical unit, as sent (an outlier is kept as it was)")
    quality: list[QualityCode] = Field(description="why each sample is out of the clean stream (never `ok`)")
    source_topic: str
    source_partition: int
    source_offset: int
    received_at: UtcDatetime = Field(description="broker append time of the package")
    processed_at: UtcDatetime

    @model_validator(mode="after")
    def _columns_align(self) -> Self:
        n = len(self.v)
        if not (len(self.sample_index) == len(self.t_raw_us) == len(self.t_us) == len(self.quality) == n):
            raise PydanticCustomError(
                "length_mismatch", "sample_index, t_raw_us, t_us, v and quality must have equal lengths"
            )
        if QualityCode.OK in self.quality:
            raise PydanticCustomError("flagged_ok", "a flagged sample cannot have quality 'ok'")
        return self
