"""Settings of the nightly batch, from ``VIGIL_NIGHTLY_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NightlySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_NIGHTLY_", frozen=True, extra="ignore")

    # Days of a sensor's own history its day is scored against (fewer than `min_history_days`: peers decide).
    trailing_days: int = Field(default=7, ge=1, le=90)
    min_history_days: int = Field(default=3, ge=1)
    # A machine whose health score falls below this is unhealthy; newly unhealthy raises an alert.
    unhealthy_below: float = Field(default=50.0, gt=0, lt=100)
    critical_below: float = Field(default=25.0, gt=0, lt=100)
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
    root: str = "s3a://lake"
    driver_memory: str = "2g"
