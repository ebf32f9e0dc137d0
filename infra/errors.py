"""The one error root of the infra package: every failure names the service and its log."""

from __future__ import annotations

from pathlib import Path


class InfraError(RuntimeError):
    """A service could not be fetched, started, checked or stopped."""

    def __init__(self, service: str, message: str, log: Path | None = None) -> None:
        self.service = service
        self.log = log
        where = f" (log: {log})" if log else ""
        super().__init__(f"{service}: {message}{where}")
