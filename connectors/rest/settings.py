"""Settings of the REST broker, from ``VIGIL_REST_*`` environment variables (defaults work locally)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.settings import get_settings

MIB = 1024 * 1024


class RestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_REST_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8443
    # Under VIGIL_DATA_DIR by default, like every other service's state.
    # A self-signed pair is generated here by `make up` / `make rest` when absent; point these at a real
    # certificate (and its key) to serve one.
    cert_file: Path = Field(default_factory=lambda: get_settings().data_dir / "tls" / "rest.crt")
    key_file: Path = Field(default_factory=lambda: get_settings().data_dir / "tls" / "rest.key")
    token_db: Path = Field(default_factory=lambda: get_settings().data_dir / "rest" / "tokens.sqlite")

    max_body_bytes: int = Field(default=16 * MIB, gt=0, description="JSON bodies above this get 413")
    max_upload_bytes: int = Field(default=256 * MIB, gt=0, description="multipart (claim check) bodies")
    rate_per_s: float = Field(default=50.0, gt=0, description="sustained requests per second per token")
    rate_burst: int = Field(default=100, ge=1, description="requests a token may send at once")
    request_timeout_s: float = Field(default=30.0, gt=0, description="a request taking longer gets 504")
    produce_timeout_s: float = Field(default=15.0, gt=0, description="Kafka must acknowledge within this")
    # The request line and headers together; a longer request gets 431 `head_too_large`: from uvicorn's h11
    # (connectors/rest/_http11.py) while the head is still arriving, else from the request envelope.
    max_head_bytes: int = Field(default=64 * 1024, ge=8 * 1024, description="request line + headers cap")
    max_batch: int = Field(default=500, ge=1, description="packages per JSON array")

    blob_bucket: str = "raw-blobs"
    claim_ttl_days: int = Field(default=7, ge=1, description="a claim expires (and its object is deleted) after")
    sweep_interval_s: float = Field(default=300.0, gt=0, description="how often expired claims are deleted")
    search_limit: int = Field(default=50, ge=1, description="GET /sensors returns at most this many")
    registry_wait_s: float = Field(
        default=60.0, ge=0, description="at start, wait this long for the registry to read the metadata topic"
    )
