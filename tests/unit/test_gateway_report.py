"""Gateway report and settings: the tally reconciles with what was generated, the run budget, the CLI.

The send loop (stop conditions, pacing, only acknowledged messages counted) needs the
broker, so its tests are in tests/integration/test_gateway_kafka.py.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.gateway.cli import app
from connectors.gateway.faults import FaultRates
from connectors.gateway.plant import PlantConfig, build_plant
from connectors.gateway.producer import GatewayError, budget, producer_config
from connectors.gateway.report import Tally
from connectors.gateway.settings import GatewaySettings
from connectors.gateway.simulate import emit

pytestmark = pytest.mark.unit


def _messages(rates: FaultRates | None = None) -> Any:
    return emit(build_plant(PlantConfig()), rates or FaultRates(), now_us=lambda: 0)


def test_tally_reconciles_with_what_was_generated() -> None:
    rates = FaultRates(bad_rate=0.2, duplicate_rate=0.2, features_rate=0.3, gap_rate=0.2, stuck_rate=0.2)
    messages = list(itertools.islice(_messages(rates), 300))
    tally = Tally()
    for message in messages:
        tally.delivered(message)
    counts = tally.counts()
    assert counts["packages_total"] == 300
    assert counts["valid"] + counts["bad"] + counts["duplicates"] == 300
    assert counts["samples"] == sum(m.samples for m in messages if m.category == "valid")
    assert sum(counts["valid_by_payload"].values()) == sum(counts["valid_by_sensor_kind"].values()) == counts["valid"]
    assert counts["injected"].gaps == sum(m.injected.gaps for m in messages if m.category == "valid")


def test_producer_is_idempotent_and_partitions_like_java() -> None:
    config = producer_config(GatewaySettings(), "broker:9092")
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["partitioner"] == "murmur2_random"  # same partition as the JVM and aiokafka for a key


def test_budget() -> None:
    assert budget(100.0, 2.0, None) == 200
    assert budget(100.0, 2.0, 50) == 50
    assert budget(None, None, 5) == 5
    with pytest.raises(GatewayError, match="unbounded"):
        budget(None, 10.0, None)


def test_cli_describe_and_metadata_out(tmp_path: Path) -> None:
    out = tmp_path / "sensors.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "describe",
            "--gateways",
            "2",
            "--machines-per-gateway",
            "1",
            "--degrading",
            "imm-02",
            "--metadata-out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "gw-plant-a-02" in result.output
    assert "imm-02 (wears out)" in result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 8
    assert json.loads(lines[0])["@type"] == "Sensor"


def test_cli_rejects_unknown_machine_and_unknown_kind() -> None:
    result = CliRunner().invoke(app, ["describe", "--degrading", "press-99"])
    assert result.exit_code == 2
    assert "unknown machines" in result.output
    for kinds in ("bogus", "oversized"):  # oversized is a reason code, but not one the simulator injects
        result = CliRunner().invoke(app, ["run", "--bad-kinds", kinds, "--count", "1"])
        assert result.exit_code == 2, result.output


def test_cli_fails_clearly_when_kafka_is_unreachable() -> None:
    result = CliRunner().invoke(
        app, ["run", "--count", "1", "--bootstrap", "127.0.0.1:1"], env={"VIGIL_GATEWAY_CONNECT_TIMEOUT_S": "1"}
    )
    assert result.exit_code == 2
    assert "unreachable" in result.output


def test_cli_replay_of_a_file_that_is_not_text_fails_clearly(tmp_path: Path) -> None:
    binary = tmp_path / "readings.csv"
    binary.write_bytes(b"\x93\xff\x00 not text")
    result = CliRunner().invoke(app, ["replay", str(binary)])
    assert result.exit_code == 2
    assert "can't decode byte 0x93" in result.output
