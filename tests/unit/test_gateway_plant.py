"""Gateway simulator: the plant is deterministic, its packages and metadata satisfy the contracts, wear shows."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from connectors.gateway.clock import parse_us, to_us
from connectors.gateway.faults import FaultRates
from connectors.gateway.plant import Plant, PlantConfig, build_plant, sensor_descriptions
from connectors.gateway.signals import SensorKind
from connectors.gateway.simulate import LATENCY_US, Outgoing, anchored, build, emit
from contracts import CONTEXT_V1, EdgePackage, SensorDescription

pytestmark = pytest.mark.unit

NO_FAULTS = FaultRates(outlier_rate=0, null_rate=0, gap_rate=0, stuck_rate=0, bad_rate=0, duplicate_rate=0)
# Far more faults than a real run, so a few rounds exercise every path.
MANY_FAULTS = FaultRates(
    outlier_rate=0.01, null_rate=0.01, gap_rate=0.3, stuck_rate=0.3, bad_rate=0.3, duplicate_rate=0.2, features_rate=0.2
)


def _traffic(config: PlantConfig, rates: FaultRates, rounds: int) -> list[Outgoing]:
    return list(emit(build_plant(config), rates, now_us=lambda: 0, rounds=rounds))


def test_same_seed_same_plant_and_bytes() -> None:
    config = PlantConfig(seed=7, gateways=3, machines_per_gateway=2)
    first, second = build_plant(config), build_plant(config)
    assert [s.sensor_id for s in first.sensors] == [s.sensor_id for s in second.sensors]
    assert [g.clock for g in first.gateways] == [g.clock for g in second.gateways]
    assert first.degrading == second.degrading
    assert [m.value for m in _traffic(config, MANY_FAULTS, 3)] == [m.value for m in _traffic(config, MANY_FAULTS, 3)]


def test_other_seed_other_plant() -> None:
    a, b = build_plant(PlantConfig(seed=1)), build_plant(PlantConfig(seed=2))
    assert not {s.sensor_id for s in a.sensors} & {s.sensor_id for s in b.sensors}
    assert [m.params for m in a.machines] != [m.params for m in b.machines]


def test_topology() -> None:
    plant = build_plant(PlantConfig(gateways=3, machines_per_gateway=2, degrading=("imm-02", "pump-06")))
    assert [g.gateway_id for g in plant.gateways] == ["gw-plant-a-01", "gw-plant-a-02", "gw-plant-a-03"]
    assert len(plant.sensors) == 3 * 2 * len(SensorKind)
    assert len({s.sensor_id for s in plant.sensors}) == len(plant.sensors)
    assert plant.degrading == ["imm-02", "pump-06"]
    assert [s.unit for s in plant.sensors if s.kind is SensorKind.TEMPERATURE].count("degF") == 1
    assert {s.unit for s in plant.sensors if s.kind is SensorKind.PRESSURE} == {"bar"}
    assert len(build_plant(PlantConfig(degrading=2)).degrading) == 2


def test_unknown_degrading_machine_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown machines"):
        build_plant(PlantConfig(degrading=("press-99",)))


def test_metadata_validates_round_trips_and_is_multilingual() -> None:
    plant = build_plant(PlantConfig())
    descriptions = sensor_descriptions(plant, datetime(2026, 11, 23, tzinfo=UTC))
    assert len(descriptions) == len(plant.sensors)
    for description in descriptions:
        again = SensorDescription.from_wire(description.to_wire())
        assert again == description
        assert set(again.label) == {"en", "de", "it"}
        assert set(again.context.machine_label) == {"en", "de", "it"}
        assert again.jsonld_context == CONTEXT_V1
        assert "schema:manufacturer" in json.loads(description.to_wire())
        assert again.thresholds is not None
        assert again.range.min < again.range.max


def test_valid_packages_satisfy_the_contract() -> None:
    config = PlantConfig(gateways=2, machines_per_gateway=2, samples_per_package=200)
    plant = build_plant(config)
    messages = _traffic(config, MANY_FAULTS, 6)
    valid = [m for m in messages if m.category == "valid"]
    assert {m.payload for m in valid} == {"samples", "features"}
    for message in valid:
        package = EdgePackage.from_wire(message.value)  # full validation
        assert message.key == str(package.sensor_id).encode()
        assert package.package_id == message.package_id
        assert package.sent_at > package.window.end  # sent after the window closed, on the gateway clock
        if package.samples is not None:
            assert len(package.samples.t) == message.samples
    by_sensor = {s.sensor_id: s for s in plant.sensors}
    samples = [EdgePackage.from_wire(m.value) for m in valid if m.payload == "samples"]
    # A round holds samples_per_package vibration samples and 10 Hz * window of the others, minus gaps.
    vib = [p for p in samples if by_sensor[p.sensor_id].kind is SensorKind.VIBRATION]
    assert max(len(p.samples.t) for p in vib if p.samples) == 200
    assert len({m.package_id for m in valid}) == len(valid)  # ids unique within the run


def test_windows_tile_and_sent_at_follows_true_send_time() -> None:
    config = PlantConfig(samples_per_package=500, skewed_gateways=0)
    plant = build_plant(config)
    sensor = plant.sensors[0]
    first = build(plant, sensor, 0, NO_FAULTS, 0)
    second = build(plant, sensor, 1, NO_FAULTS, 0)
    assert first is not None
    assert second is not None
    assert first[0].window.end == second[0].window.start
    assert first[0].samples is not None
    assert len(first[0].samples.t) == 500
    clock = plant.clock(sensor.gateway_id)
    # Sent no earlier than window end + latency (true time); later if the caller's clock says so.
    window_end_true = plant.start_us + plant.window_us
    assert to_us(first[0].sent_at) == clock.gateway_us(window_end_true + LATENCY_US)
    later = build(plant, sensor, 0, NO_FAULTS, window_end_true + 5_000_000)
    assert later is not None
    assert to_us(later[0].sent_at) == clock.gateway_us(window_end_true + 5_000_000)


def test_anchored_run_ends_now_and_wears_over_the_run() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    config = anchored(PlantConfig(gateways=2, machines_per_gateway=3), packages=240, now=now)
    rounds = 240 // 24
    assert config.start == now - timedelta(seconds=rounds)
    assert config.horizon_s == rounds
    messages = _traffic(config, NO_FAULTS, rounds)
    last_end = max(parse_us(json.loads(m.value)["window"]["end"]) for m in messages)
    skew = max(abs(g.clock.offset_ms) for g in build_plant(config).gateways) * 1000 + 1000
    assert last_end <= to_us(now) + skew  # on gateway clocks, so allow their error


def _rms(plant: Plant, machine: str, round_: int) -> float:
    sensor = next(s for s in plant.sensors if s.machine.machine_id == machine and s.kind is SensorKind.VIBRATION)
    built = build(plant, sensor, round_, NO_FAULTS, 0)
    assert built is not None
    assert built[0].samples is not None
    v = np.array(built[0].samples.v, dtype=float)
    return float(np.sqrt(np.mean(v * v)))


def test_degrading_machine_vibration_grows_and_crosses_warning() -> None:
    config = PlantConfig(degrading=("press-01",), horizon_s=100)
    plant = build_plant(config)
    worn = [_rms(plant, "press-01", r) for r in (0, 25, 50, 75, 99)]
    healthy = [_rms(plant, "imm-02", r) for r in (0, 25, 50, 75, 99)]
    assert worn == sorted(worn)  # grows monotonically
    assert worn[-1] > 2 * worn[0]
    assert max(healthy) < 1.2 * min(healthy)  # a healthy machine stays put
    assert abs(worn[0] - healthy[0]) < 0.3 * healthy[0]  # and both start alike
    descriptions = {d.sensor_id: d for d in sensor_descriptions(plant, config.start)}
    for sensor in (s for s in plant.sensors if s.machine.machine_id == "press-01"):
        thresholds = descriptions[sensor.sensor_id].thresholds
        assert thresholds is not None
        start, end = (build(plant, sensor, r, NO_FAULTS, 0) for r in (0, 99))
        assert start is not None
        assert start[0].samples is not None
        assert end is not None
        assert end[0].samples is not None
        v0, v1 = np.array(start[0].samples.v, dtype=float), np.array(end[0].samples.v, dtype=float)
        high, low = thresholds.warning_high, thresholds.warning_low
        inside = (high is None or v0.max() < high) and (low is None or v0.min() > low)
        crossed = (high is not None and v1.max() > high) or (low is not None and v1.min() < low)
        assert inside, f"{sensor.kind} already alarms when healthy"
        assert crossed, f"{sensor.kind} never reaches warning on a failing machine"


def test_fahrenheit_sensor_reads_like_its_celsius_twin() -> None:
    plant = build_plant(PlantConfig(gateways=1, machines_per_gateway=1))
    sensor = next(s for s in plant.sensors if s.kind is SensorKind.TEMPERATURE)
    assert sensor.unit == "degF"
    built = build(plant, sensor, 0, NO_FAULTS, 0)
    assert built is not None
    assert built[0].samples is not None
    celsius = (np.array(built[0].samples.v, dtype=float) - 32) / 1.8
    assert 30 < celsius.mean() < 60


def test_emit_is_lazy_and_endless_without_rounds() -> None:
    messages = emit(build_plant(PlantConfig()), NO_FAULTS, now_us=lambda: 0)
    assert len(list(itertools.islice(messages, 100))) == 100
