"""Every component finds the Kafka `make up` runs: a moved port (VIGIL_KAFKA_PORT) moves them all."""

from __future__ import annotations

import pytest

from connectors.files.settings import FilesSettings
from connectors.gateway.settings import GatewaySettings
from infra.settings import InfraSettings
from streams.settings import StreamSettings

pytestmark = pytest.mark.unit


def _bootstraps() -> list[str]:
    return [
        InfraSettings().kafka_bootstrap,
        StreamSettings().kafka_bootstrap,
        GatewaySettings().kafka_bootstrap,
        FilesSettings().bootstrap,
    ]


def test_a_moved_port_moves_every_component(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setenv("VIGIL_HOST", "127.0.0.2")
    monkeypatch.setenv("VIGIL_KAFKA_PORT", "19092")
    assert _bootstraps() == ["127.0.0.2:19092"] * 4


def test_an_explicit_bootstrap_wins_for_the_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_KAFKA_PORT", "19092")
    monkeypatch.setenv("VIGIL_KAFKA_BOOTSTRAP", "kafka.plant:9094")
    monkeypatch.setenv("VIGIL_FILES_KAFKA_BOOTSTRAP", "kafka.plant:9094")
    assert _bootstraps()[1:] == ["kafka.plant:9094"] * 3
