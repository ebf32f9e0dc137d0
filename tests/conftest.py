"""Shared fixtures. Integration tests reuse the services `make up` started; they never start their own."""

from __future__ import annotations

import importlib

import pytest

from infra import procs
from infra.settings import InfraSettings, get_settings


@pytest.fixture(scope="session")
def infra_settings() -> InfraSettings:
    return get_settings()


@pytest.fixture(scope="session")
def platform(infra_settings: InfraSettings) -> InfraSettings:
    """The running platform; fails (never skips) naming the service and its log when one is down."""
    down = []
    for name in ("kafka", "minio", "trino"):
        module = importlib.import_module(f"infra.{name}")
        try:
            healthy = bool(module.probe(infra_settings))
        except Exception:
            healthy = False
        if not healthy:
            down.append(f"{name} (log: {procs.log_file(infra_settings, name)})")
    if down:
        pytest.fail(f"platform not healthy: {', '.join(down)}; run `make up` and read the log", pytrace=False)
    return infra_settings
