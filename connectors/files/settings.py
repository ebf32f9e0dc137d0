"""Settings of the file pickup, read once from ``VIGIL_FILES_*`` environment variables at the entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts._base import GatewayId
from infra.settings import InfraSettings

# A package must fit one Kafka message: MAX_INPUT_BYTES (contracts/topics.py) on the topic, and 1,000,000 bytes
# in the producer (librdkafka's default message.max.bytes, which producer_config keeps). A bound on the count is
# simpler than splitting by bytes and just as safe, because a sample's JSON has a worst case: a time of at most
# 18 digits (the parsers accept 1970..9999, so at most 253402300799999999) and a value of at most 24 characters
# (-1.2345678901234567e-300), each with a comma: 44 bytes. 20,000 samples are at most 880,000 bytes, and the rest
# of the package (ids, gateway id of <= 64 characters, three times, the @context) under 1 KiB: 881,024 bytes, with
# room to spare under both limits (tests/unit/test_files_pickup.py builds that worst case). The gateway's own
# MAX_SAMPLES (100,000) would allow ~4.4 MB packages: Kafka refuses those, and the file would fail every pass.
MAX_SAMPLES_PER_PACKAGE: Final = 20_000


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
