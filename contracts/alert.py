"""Alerts published on `alerts.v1` (keyed by asset) for downstream apps."""

from __future__ import annotations

from enum import StrEnum
from typing import Self
from uuid import UUID

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from contracts._base import AssetId, Contract, UtcDatetime


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    """An episode is one `open` and, when the condition clears, one `close` with the same episode id."""

    OPEN = "open"
    CLOSE = "close"


class AlertSource(StrEnum):
    STREAM = "stream"
    NIGHTLY = "nightly"


class Alert(Contract):
    alert_id: UUID
    episode_id: UUID
    state: AlertState
    asset_id: AssetId
    site: str | None = None
    sensor_id: UUID | None = None
    gateway_id: str | None = None
    rule: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="rule name, e.g. threshold_high, clock_skew")
    severity: Severity
    source: AlertSource
    message: str = Field(min_length=1, max_length=1000)
    value: float | None = None
    threshold: float | None = None
    window_start: UtcDatetime
    window_end: UtcDatetime
    raised_at: UtcDatetime

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.window_end < self.window_start:
            raise PydanticCustomError("window_reversed", "evidence window end is before its start")
        return self
