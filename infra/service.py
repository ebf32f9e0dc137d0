"""What every local service module (`infra/kafka.py`, `infra/minio.py`, `infra/trino.py`) provides."""

from __future__ import annotations

from typing import Protocol

from infra.procs import ProcessSpec
from infra.settings import InfraSettings


class Service(Protocol):
    NAME: str

    def fetch(self, settings: InfraSettings) -> None:
        """Download or build into `settings.cache_dir` once; later calls return at once."""

    def ports(self, settings: InfraSettings) -> list[int]:
        """Ports the service listens on (checked free before start, shown by `make status`)."""

    def prepare(self, settings: InfraSettings) -> ProcessSpec:
        """Write config under `settings.data_dir` (first start: format storage) and return how to run it.

        The argv must mention `settings.data_dir`, which is how a recorded PID is recognised as ours.
        """

    def probe(self, settings: InfraSettings) -> bool:
        """A real health probe: True when the service answers."""

    def after_start(self, settings: InfraSettings) -> None:
        """Idempotent set-up once healthy (buckets, schemas, topics)."""
