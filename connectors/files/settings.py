"""Settings of the file pickup, read once from ``VIGIL_FILES_*`` environment variables at the entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.gateway.replay import MAX_SAMPLES_PER_PACKAGE
from contracts._base import GatewayId
from infra.settings import InfraSettings


class FilesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_FILES_", frozen=True, extra="ignore")

    data_dir: Path | None = Field(default=None, description="default: VIGIL_DATA_DIR (InfraSettings.data_dir)")
    watch_dir: Path | None = Field(default=None, description="local inbox; default <data_dir>/files/inbox")
    ledger_path: Path | None = Field(default=None, description="default <data_dir>/files/ledger.sqlite")
    after: Literal["move", "leave"] = Field(
        default="move", description="local files once processed: move to <data_dir>/files/done/ (or rejected/)"
    )
    settle_seconds: float = Field(
        default=10.0, ge=0, description="a file untouched this long is ready on first sight; else wait one poll"
    )
    poll_seconds: float = Field(default=5.0, gt=0)
    samples_per_package: int = Field(default=100, ge=1, le=MAX_SAMPLES_PER_PACKAGE)
    gateway_id: GatewayId = "file-drop"

    ftp_host: str | None = Field(default=None, description="FTP polling is off unless this is set")
    ftp_port: int = Field(default=21, ge=1, le=65535)
    ftp_user: str = "anonymous"
    ftp_password: SecretStr = SecretStr("")
    ftp_dir: str = "/"
    ftp_timeout_s: float = Field(default=30.0, gt=0)

    kafka_bootstrap: str | None = Field(default=None, description="default: InfraSettings().kafka_bootstrap")
    client_id: str = "vigil-files"
    delivery_timeout_s: float = Field(default=60.0, gt=0, description="give up on a message after this")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="fail fast when Kafka is down")

    @property
    def root(self) -> Path:
        return (self.data_dir or InfraSettings().data_dir) / "files"

    @property
    def inbox(self) -> Path:
        return self.watch_dir or self.root / "inbox"

    @property
    def ledger_file(self) -> Path:
        return self.ledger_path or self.root / "ledger.sqlite"

    @property
    def done_dir(self) -> Path:
        return self.root / "done"

    @property
    def rejected_dir(self) -> Path:
        return self.root / "rejected"

    @property
    def staging_dir(self) -> Path:
        return self.root / "staging"

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or InfraSettings().kafka_bootstrap
