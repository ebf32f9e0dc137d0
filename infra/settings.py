"""Settings of the local platform, read once from ``VIGIL_*`` environment variables.

Every default works on a developer machine; the README lists each variable.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class InfraSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", frozen=True, extra="ignore")

    # Where services keep their data (git-ignored, removed by `make clean`).
    data_dir: Path = Field(default=REPO_ROOT / ".data")
    # Downloads and builds, shared across clones; `make clean` never touches it.
    cache_dir: Path = Field(default=Path.home() / ".cache" / "vigil")
    host: str = "127.0.0.1"

    kafka_version: str = "4.2.0"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "1g"
    kafka_java_home: Path | None = None  # default: the `java` on PATH (17+)

    minio_version: str = "v0.0.0-20260212201848-7aac2a2c5b7c"
    minio_port: int = 9000
    minio_console_port: int = 9001
    minio_root_user: str = "vigil"
    minio_root_password: SecretStr = SecretStr("vigil-secret-key")
    minio_buckets: tuple[str, ...] = ("lake", "raw-blobs")

    trino_version: str = "476"
    trino_port: int = 8080
    trino_heap: str = "3G"
    trino_java_home: Path = Path("/usr/lib/jvm/temurin-25-jdk-amd64")
    trino_catalog: str = "vigil"
    trino_schemas: tuple[str, ...] = ("bronze", "silver", "gold")

    spark_version: str = "4.1.4"
    delta_version: str = "4.4.1"
    hadoop_version: str = "3.4.2"

    start_timeout_s: float = 180.0

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def minio_endpoint(self) -> str:
        return f"{self.host}:{self.minio_port}"

    @property
    def trino_url(self) -> str:
        return f"http://{self.host}:{self.trino_port}"


@lru_cache(maxsize=1)
def get_settings() -> InfraSettings:
    return InfraSettings()
