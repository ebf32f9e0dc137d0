"""Settings of the stream worker, read once from ``VIGIL_*`` environment variables at the entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts import MAX_INPUT_BYTES
from streams.alerts import DEFAULT_RULES


class StreamSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", frozen=True, extra="ignore")

    # Unset, the bootstrap is where `make up` runs Kafka: VIGIL_HOST and VIGIL_KAFKA_PORT, as infra/settings.py reads
    # them (not imported: the worker is deployed without infra/). A fixed default ignored a moved port.
    host: str = "127.0.0.1"
    kafka_port: int = 9092
    kafka_bootstrap: str = Field(default="", description="default: VIGIL_HOST:VIGIL_KAFKA_PORT")
    streams_app_id: str = Field(default="vigil-streams", description="consumer group and changelog prefix")
    streams_rules: Path = Field(default=DEFAULT_RULES, description="alert rules file")
    streams_metrics_host: str = "127.0.0.1"
    streams_metrics_port: int = Field(default=9108, description="Prometheus /metrics")
    streams_dedupe_horizon_s: float = Field(default=24 * 3600, gt=0, description="how long a package id is remembered")
    streams_future_tolerance_s: float = Field(
        default=300, ge=0, description="how far ahead of the broker a time may be"
    )
    streams_max_message_bytes: int = Field(
        default=MAX_INPUT_BYTES, gt=0, description="larger packages are `oversized` (the topic's own limit)"
    )
    streams_fetch_max_bytes: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        description="per-partition fetch size; Faust's 1 MiB default starves the worker of 20-30 KB packages",
    )
    streams_state_checkpoint_s: float = Field(
        default=1.0,
        ge=0,
        description="per-sensor quality/alert state and per-gateway clock state: changelog write interval per key",
    )
    streams_clock_report_s: float = Field(
        default=1.0,
        ge=0,
        description="per partition: how often a gateway's offset goes to the clock-skew rule (at once on a breach)",
    )
    data_dir: Path = Field(default=Path(__file__).resolve().parent.parent / ".data", description="VIGIL_DATA_DIR")

    @model_validator(mode="after")
    def _bootstrap_of_the_local_kafka(self) -> Self:
        if not self.kafka_bootstrap:
            object.__setattr__(self, "kafka_bootstrap", f"{self.host}:{self.kafka_port}")  # frozen: set once here
        return self

    @property
    def streams_dir(self) -> Path:
        """Faust's own folder for this app id (kept out of the working directory)."""
        return self.data_dir / "streams" / self.streams_app_id
