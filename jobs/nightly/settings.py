"""Settings of the nightly batch, from ``VIGIL_NIGHTLY_*`` environment variables."""

from __future__ import annotations

from typing import Self

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class NightlySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_NIGHTLY_", frozen=True, extra="ignore", populate_by_name=True)

    # Days of a sensor's own history its day is scored against (fewer than `min_history_days`: peers decide).
    trailing_days: int = Field(default=7, ge=1, le=90)
    min_history_days: int = Field(default=3, ge=1)
    # A machine whose health score falls below this is unhealthy; newly unhealthy raises an alert.
    unhealthy_below: float = Field(default=50.0, gt=0, lt=100)
    critical_below: float = Field(default=25.0, gt=0, lt=100)
    # An open health alert closes on the first day the machine scores at least this (above `unhealthy_below`, so
    # a score wobbling around the threshold gives one episode, not an alert every other day).
    healthy_again_at: float = Field(default=60.0, gt=0, le=100)
    # Rows older than this many days are deleted by the nightly retention step (per table).
    retention_days: dict[str, int] = {
        "bronze.packages": 30,
        "bronze.deadletter": 90,
        "bronze.audit": 365,
        "bronze.flagged_samples": 730,  # as long as the clean readings they complete
        "silver.readings": 730,
        "silver.packages": 730,
        "silver.alerts": 730,
    }
    # VACUUM keeps unreferenced files this long (Delta's own minimum is 168 h unless its check is disabled).
    vacuum_retain_hours: int = Field(default=168, ge=168)
    # When the scheduler runs yesterday's batch (cron fields, UTC).
    schedule_cron: str = "30 2 * * *"
    # The lake writer's root unless set apart: a batch reading one root while the writer fills another computes
    # gold tables from stale silver ones, and registers them in Trino next to the writer's new tables.
    root: str = Field(default="s3a://lake", validation_alias=AliasChoices("VIGIL_NIGHTLY_ROOT", "VIGIL_LAKE_ROOT"))
    # Register the gold tables (at `root`) and their views in Trino after each run.
    register_in_trino: bool = True
    driver_memory: str = "2g"

    @model_validator(mode="after")
    def _thresholds(self) -> Self:
        if self.healthy_again_at < self.unhealthy_below:
            raise ValueError(
                f"healthy_again_at ({self.healthy_again_at:g}) is below unhealthy_below ({self.unhealthy_below:g}): "
                "a machine could be unhealthy and healthy again on the same score"
            )
        return self
