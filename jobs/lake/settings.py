"""Settings of the streaming lake writer, from ``VIGIL_LAKE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.settings import InfraSettings
from jobs.lake.tables import trino_root


class LakeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_LAKE_", frozen=True, extra="ignore")

    # Micro-batch trigger: a reading is queryable about this long (plus the batch's own time) after it arrived.
    trigger_seconds: float = Field(default=5.0, gt=0)
    # Bounds one micro-batch (and so the driver's memory) when the writer catches up on a backlog. Kafka's source
    # can only count messages, not bytes: with 1000-sample packages, a 20,000-message batch (8,593 clean records,
    # as many packages) ran the 2 GB driver out of execution memory here, so the bound leaves room for twice that.
    max_offsets_per_trigger: int = Field(default=10_000, gt=0)
    # Where a new checkpoint starts reading: `earliest` keeps every message still in Kafka; `latest` skips the
    # backlog when attaching to a busy Kafka (the nightly ledger then shows the skipped messages as missing).
    starting_offsets: Literal["earliest", "latest"] = "earliest"
    # Where tables live, for Spark (S3A). Tests use their own root so they never touch the real tables.
    root: str = "s3a://lake"
    # Kafka offsets and batch plans; losing it means re-reading the topics (tables then skip what they hold).
    # Default: <data dir>/lake/checkpoint, next to the Kafka it belongs to (`make clean` removes both).
    checkpoint_dir: Path | None = None
    # A replayed clean or flagged record has its first delivery's received_at; it is matched against the packages
    # received within this many minutes of the batch's (wide: clocks play no part, both are broker times).
    dedupe_window_minutes: float = Field(default=60.0, gt=0)
    driver_memory: str = "2g"
    register_in_trino: bool = True
    # Default: <data dir>/lake/status.json. Tests running a writer of their own point it elsewhere.
    status_file: Path | None = None
    # `make lake` runs the writer under a supervisor (jobs/lake/supervisor.py) that starts it again after a failure,
    # waiting restart_delay_seconds, doubling up to restart_max_delay_seconds. It gives up when the writer fails
    # again after max_restarts restarts in a row; one that ran restart_healthy_after_seconds first starts a new count.
    max_restarts: int = Field(default=5, ge=0)
    restart_delay_seconds: float = Field(default=10.0, ge=0)
    restart_max_delay_seconds: float = Field(default=300.0, ge=0)
    restart_healthy_after_seconds: float = Field(default=600.0, gt=0)

    def checkpoint(self, infra: InfraSettings) -> Path:
        return self.checkpoint_dir or infra.data_dir / "lake" / "checkpoint"

    @property
    def trino_root(self) -> str:
        return trino_root(self.root)
