"""End-to-end fixtures: the platform `make up` started plus the lake writer (`make lake`), started if needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from infra.settings import InfraSettings
from jobs.lake.status import fresh_status


@pytest.fixture(scope="session")
def lake_writer(platform: InfraSettings) -> InfraSettings:
    """The streaming lake writer, running (the same idempotent start as `make lake`; `make down` stops it)."""
    if fresh_status(platform) is None:
        started = subprocess.run([sys.executable, "-m", "jobs.lake", "start"], check=False, timeout=600)
        if started.returncode != 0:
            pytest.fail("the lake writer did not start; read .data/logs/lake.log", pytrace=False)
    return platform
