"""Settings of `vigil-gateway`, read once from ``VIGIL_*`` environment variables at the entry point."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.settings import InfraSettings


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", frozen=True, extra="ignore")

    # Unset: where `make up` runs Kafka (VIGIL_HOST, VIGIL_KAFKA_PORT); a fixed default ignored a moved port.
    kafka_bootstrap: str = Field(default_factory=lambda: InfraSettings().kafka_bootstrap)
    gateway_client_id: str = "vigil-gateway"
    # lz4: cheap on a gateway's CPU and ~3x on these JSON packages (digits compress well).
    gateway_compression: Literal["lz4", "zstd", "snappy", "gzip", "none"] = "lz4"
    gateway_linger_ms: int = Field(default=5, ge=0, description="batch a few ms of packages per request")
    gateway_delivery_timeout_s: float = Field(default=60.0, gt=0, description="give up on a message after this")
    gateway_connect_timeout_s: float = Field(default=10.0, gt=0, description="fail fast when Kafka is down")
