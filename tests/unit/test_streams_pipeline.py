"""streams.pipeline.process: clock correction, quality, canonical units, provenance, pass-through and alerts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import (
    Alert,
    AlertState,
    CleanReadingBatch,
    ClockSource,
    EdgePackage,
    FlaggedSamples,
    QualityCode,
    Quantity,
    SensorDescription,
)
from contracts import avro as avro_codec
from streams.alerts import RuleSet, load_rules
from streams.pipeline import Processed, SensorState, Source, process

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts" / "examples"
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
T0_US = 1_795_420_800_000_000
RATE_HZ = 10.0
PERIOD_US = 100_000
OFFSET_MS = -12.5
SOURCE = Source("edge.packages.v1", 3, 4242, datetime(2026, 11, 23, 8, 0, 21, 31000, tzinfo=UTC))
NOW = datetime(2026, 11, 23, 8, 0, 21, 45000, tzinfo=UTC)
RULES = load_rules()


def _sensor(**overrides: Any) -> SensorDescription:
    data = json.loads((EXAMPLES / "sensor_description.json").read_text())
    data.update(overrides)
    return SensorDescription.model_validate(data)


def _fahrenheit_sensor() -> SensorDescription:
    # The example sensor in degF: range -40..302 degF = -40..150 degC, thresholds 176/203 degF = 80/95 degC.
    return _sensor(
        unit="degF", range={"min": -40.0, "max": 302.0}, thresholds={"warning_high": 176.0, "critical_high": 203.0}
    )


def _package(t_us: list[int], v: list[float | None], *, start_us: int, end_us: int, **overrides: Any) -> EdgePackage:
    def at(us: int) -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)

    data: dict[str, Any] = {
        "package_id": str(uuid.uuid4()),
        "gateway_id": "gw-plant-a-01",
        "sensor_id": "6f1c2a0e-4b7d-4e8a-9c51-2f3d8e9a0b11",
        "sent_at": at(end_us + 20_000),
        "clock_offset_ms": OFFSET_MS,
        "window": {"start": at(start_us), "end": at(end_us)},
        "samples": {"t": t_us, "v": v},
    }
    data.update(overrides)
    return EdgePackage.model_validate(data)


def _process(package: EdgePackage, sensor: SensorDescription, state: SensorState | None = None) -> Processed:
    return process(
        package,
        sensor,
        SOURCE,
        clock_offset_ms=OFFSET_MS,
        clock_source=ClockSource.NTP,
        state=SensorState() if state is None else state,
        rules=RULES,
        now=NOW,
    )


def _to_c(fahrenheit: np.ndarray) -> np.ndarray:
    return (fahrenheit - 32.0) * 5.0 / 9.0


# A 20 s package at 10 Hz in degF: a slow noisy sine (clear of the Hampel filter's edge cases), three spikes,
# a null, one value beyond the range and a 5-sample gap.
N = 200
SPIKES = (40, 97, 150)
NULL = 120
OUT_OF_RANGE = 60
GAP = range(180, 185)


def _dirty_package() -> tuple[EdgePackage, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    t = T0_US + np.arange(N, dtype=np.int64) * PERIOD_US
    v = 160.0 + 9.0 * np.sin(2 * np.pi * 0.05 * np.arange(N) / RATE_HZ) + rng.normal(0, 0.3, N)
    v[list(SPIKES)] += 60.0
    v[OUT_OF_RANGE] = 400.0
    values: list[float | None] = [float(x) for x in v]
    values[NULL] = None
    keep = np.setdiff1d(np.arange(N), list(GAP))
    package = _package(
        t[keep].tolist(),
        [values[i] for i in keep],
        start_us=T0_US,
        end_us=T0_US + N * PERIOD_US,
    )
    return package, t, v


def test_clean_record_keeps_only_ok_samples_in_canonical_units() -> None:
    package, t, v = _dirty_package()
    result = _process(package, _fahrenheit_sensor())
    clean = result.clean
    ok = np.setdiff1d(np.arange(N), [*SPIKES, NULL, OUT_OF_RANGE, *GAP])
    assert clean.t_raw_us == t[ok].tolist()
    assert clean.dropped == {"spike": 3, "non_finite": 1, "out_of_range": 1}
    assert result.quality_counts == {"ok": ok.size, "spike": 3, "non_finite": 1, "out_of_range": 1}
    assert clean.quality == [QualityCode.OK] * ok.size
    assert clean.missing_samples == len(GAP)
    assert clean.unit == "degC"
    assert clean.quantity is Quantity.TEMPERATURE
    np.testing.assert_allclose(clean.v, _to_c(v[ok]), rtol=1e-12)
    assert max(clean.v) < 80.0  # degC, not the degF values (151..169) that came in
    assert len(clean.t_us) == len(clean.v) == ok.size


def test_times_are_corrected_exactly() -> None:
    package, _, _ = _dirty_package()
    clean = _process(package, _fahrenheit_sensor()).clean
    assert clean.clock_offset_ms == OFFSET_MS
    assert clean.clock_source is ClockSource.NTP
    assert clean.t_us == [raw + int(OFFSET_MS * 1000) for raw in clean.t_raw_us]
    assert clean.t_us[0] == T0_US - 12_500


def test_provenance_and_context_are_carried() -> None:
    package, _, _ = _dirty_package()
    clean = _process(package, _fahrenheit_sensor()).clean
    assert (clean.source_topic, clean.source_partition, clean.source_offset) == ("edge.packages.v1", 3, 4242)
    assert clean.received_at == SOURCE.append_time
    assert clean.processed_at == NOW
    assert (clean.package_id, clean.gateway_id, clean.sensor_id) == (
        package.package_id,
        package.gateway_id,
        package.sensor_id,
    )
    assert (clean.asset_id, clean.site, clean.location_on_machine) == (
        "press-01",
        "plant-a",
        "main bearing, drive side",
    )
    assert clean.features == {}
    assert clean.claim_uri is None
    # A valid record on the wire.
    assert CleanReadingBatch.model_validate_json(clean.model_dump_json()) == clean


def test_state_carries_the_tail_in_canonical_units() -> None:
    package, t, v = _dirty_package()
    result = _process(package, _fahrenheit_sensor())
    tail = result.state.tail
    assert tail.values
    assert tail.last_t_us == int(t[-1]) - 12_500
    np.testing.assert_allclose(tail.values, _to_c(v[-len(tail.values) :]), rtol=1e-12)
    assert result.state.alerts.last_mean == pytest.approx(float(np.mean(result.clean.v)))


def test_shipped_example_package_matches_the_clean_example() -> None:
    package = EdgePackage.model_validate_json((EXAMPLES / "edge_package.samples.json").read_text())
    expected = CleanReadingBatch.model_validate_json((EXAMPLES / "clean_reading_batch.json").read_text())
    source = Source(expected.source_topic, expected.source_partition, expected.source_offset, expected.received_at)
    result = process(
        package,
        _sensor(),
        source,
        clock_offset_ms=expected.clock_offset_ms,
        clock_source=expected.clock_source,
        state=SensorState(),
        rules=RULES,
        now=expected.processed_at,
    )
    columns = ("t_raw_us", "t_us", "v", "quality")
    got = result.clean.model_dump()
    want = expected.model_dump()
    assert {k: got[k] for k in got if k not in columns} == {k: want[k] for k in want if k not in columns}
    # The example is abbreviated to its first samples; the package's other 6 good samples follow them.
    assert len(result.clean.v) == 9
    for column in columns:
        assert got[column][: len(want[column])] == want[column]
    assert result.alerts == []


@pytest.mark.parametrize("example", ["edge_package.features.json", "edge_package.claim.json"])
def test_packages_without_samples_pass_through(example: str) -> None:
    package = EdgePackage.model_validate_json((EXAMPLES / example).read_text())
    sensor = _sensor(
        sensor_id=str(package.sensor_id), quantity="acceleration", unit="g", range={"min": -16.0, "max": 16.0}
    )
    state = SensorState()
    result = _process(package, sensor, state)
    clean = result.clean
    assert (clean.t_raw_us, clean.t_us, clean.v, clean.quality) == ([], [], [], [])
    assert clean.features == (package.features or {})
    assert clean.claim_uri == (package.claim.uri if package.claim else None)
    assert clean.dropped == {}
    assert clean.missing_samples == 0
    assert clean.unit == "m/s2"
    assert (clean.asset_id, clean.source_offset, clean.package_id) == ("press-01", 4242, package.package_id)
    assert result.alerts == []
    assert result.quality_counts == {}
    assert result.state is state


def _level_package(i: int, level: float) -> EdgePackage:
    """Package `i` of a steady stream: one second, 10 samples gently oscillating around `level`."""
    start = T0_US + i * 1_000_000
    t = start + np.arange(10, dtype=np.int64) * PERIOD_US
    v = level + 0.2 * np.sin(2 * np.pi * (np.arange(10) + 10 * i) / 10)
    return _package(t.tolist(), v.tolist(), start_us=start, end_us=start + 1_000_000)


@pytest.mark.parametrize(
    ("sensor", "to_unit"),
    [(_sensor(), lambda c: c), (_fahrenheit_sensor(), lambda c: c * 9.0 / 5.0 + 32.0)],
    ids=["degC", "degF"],
)
def test_threshold_episode_through_the_pipeline(sensor: SensorDescription, to_unit: Callable[[float], float]) -> None:
    # degC levels: normal 60, then above warning_high (80) but below critical_high (95), then back to normal.
    levels = [60.0] * 3 + [88.0] * 5 + [60.0] * 6
    state = SensorState()
    seen: list[tuple[int, Alert]] = []
    for i, level in enumerate(levels):
        result = _process(_level_package(i, to_unit(level)), sensor, state)
        state = result.state
        seen.extend((i, alert) for alert in result.alerts)
    warning = [(i, a) for i, a in seen if a.rule == "warning_high"]
    assert [(i, a.state) for i, a in warning] == [(4, AlertState.OPEN), (10, AlertState.CLOSE)]
    assert not [a for _, a in seen if a.rule == "critical_high"]
    (_, opened), (_, closed) = warning
    assert opened.episode_id == closed.episode_id
    assert opened.threshold == pytest.approx(80.0)
    assert opened.value == pytest.approx(88.0, abs=0.5)
    assert "degC" in opened.message
    assert (opened.asset_id, opened.site, opened.sensor_id, opened.gateway_id) == (
        "press-01",
        "plant-a",
        sensor.sensor_id,
        "gw-plant-a-01",
    )
    # Alert windows are on corrected time.
    start_us = T0_US + 4 * 1_000_000 - 12_500
    assert opened.window_start == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=start_us)
    assert closed.window_start == opened.window_start
    assert closed.window_end == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=T0_US + 11_000_000 - 12_500)
    assert not dict(state.alerts.episodes)["warning_high"].open


@settings(max_examples=50, deadline=None)
@given(offset_ms=st.floats(min_value=-86_400_000.0, max_value=86_400_000.0, allow_nan=False))
def test_any_offset_shifts_times_and_window_consistently(offset_ms: float) -> None:
    package = _level_package(0, 20.0)
    result = process(
        package,
        _sensor(),
        SOURCE,
        clock_offset_ms=offset_ms,
        clock_source=ClockSource.ESTIMATED,
        state=SensorState(),
        rules=RuleSet(),
        now=NOW,
    )
    shift = round(offset_ms * 1000)
    assert package.samples is not None
    assert result.clean.t_raw_us == package.samples.t
    assert result.clean.t_us == [t + shift for t in result.clean.t_raw_us]
    assert result.state.alerts.last_end_us == T0_US + 1_000_000 + shift
    assert result.state.tail.last_t_us == result.clean.t_us[-1]


def test_a_sensor_driven_past_its_range_does_not_clear_its_threshold_alert() -> None:
    # 88 degC opens warning_high; 200 degC is beyond the 150 degC range: every sample out_of_range, no ok samples.
    levels = [88.0, 88.0, 200.0, 200.0, 200.0, 200.0]
    state = SensorState()
    seen: list[tuple[int, str, AlertState]] = []
    for i, level in enumerate(levels):
        result = _process(_level_package(i, level), _sensor(), state)
        state = result.state
        if level > 150.0:
            assert result.clean.v == []
            assert result.clean.dropped == {"out_of_range": 10}
        seen.extend((i, alert.rule, alert.state) for alert in result.alerts)
    assert [(i, s) for i, rule, s in seen if rule == "warning_high"] == [(1, AlertState.OPEN)]
    assert [(i, s) for i, rule, s in seen if rule == "sustained_bad_quality"] == [(4, AlertState.OPEN)]
    assert dict(state.alerts.episodes)["warning_high"].open


@pytest.mark.parametrize("example", ["edge_package.features.json", "edge_package.claim.json", None])
def test_the_columnar_encoding_is_the_contract_models_avro(example: str | None) -> None:
    # The worker publishes encode_clean() (numpy columns, no per-item writes); it must be exactly the
    # validated contract model's Avro, and read back to it.
    if example is None:
        package, _, _ = _dirty_package()
    else:
        package = EdgePackage.from_wire((EXAMPLES / example).read_bytes())
        sensor = _sensor(
            sensor_id=str(package.sensor_id), quantity="acceleration", unit="g", range={"min": -16.0, "max": 16.0}
        )
    result = _process(package, _fahrenheit_sensor() if example is None else sensor)
    encoded = result.encode_clean()
    assert encoded == avro_codec.encode(result.clean)
    assert avro_codec.decode(CleanReadingBatch, encoded) == result.clean


def test_flagged_samples_keep_every_outlier_with_its_code_and_place() -> None:
    # Outliers are flagged, not deleted: each sample of a package is in its clean record or its flagged record.
    package, t, v = _dirty_package()
    result = _process(package, _fahrenheit_sensor())
    flagged = result.flagged
    assert flagged is not None
    bad = sorted([*SPIKES, NULL, OUT_OF_RANGE])
    sent = np.setdiff1d(np.arange(N), list(GAP))  # the package's samples: the gap was never sent
    assert flagged.sample_index == np.searchsorted(sent, bad).tolist()
    assert flagged.t_raw_us == t[bad].tolist()
    assert flagged.t_us == [x + round(OFFSET_MS * 1000) for x in t[bad].tolist()]
    codes = {NULL: QualityCode.NON_FINITE, OUT_OF_RANGE: QualityCode.OUT_OF_RANGE} | dict.fromkeys(
        SPIKES, QualityCode.SPIKE
    )
    assert flagged.quality == [codes[i] for i in bad]
    expected = _to_c(v[bad])
    expected[bad.index(NULL)] = np.nan
    np.testing.assert_allclose(flagged.v, expected, rtol=1e-12)  # degC, as graded; NaN where the null was
    assert len(result.clean.v) + len(flagged.v) == sent.size
    assert (flagged.package_id, flagged.asset_id, flagged.source_offset) == (
        package.package_id,
        result.clean.asset_id,
        SOURCE.offset,
    )
    encoded = result.encode_flagged()
    assert encoded == avro_codec.encode(flagged)
    again = avro_codec.decode(FlaggedSamples, encoded)
    assert again.model_copy(update={"v": []}) == flagged.model_copy(update={"v": []})
    np.testing.assert_array_equal(again.v, flagged.v)  # NaN-aware


def test_a_package_without_outliers_has_no_flagged_record() -> None:
    t = [T0_US + i * PERIOD_US for i in range(10)]
    package = _package(t, [20.0 + 0.01 * i for i in range(10)], start_us=T0_US, end_us=T0_US + 10 * PERIOD_US)
    result = _process(package, _sensor())
    assert result.quality_counts == {"ok": 10}
    assert result.flagged is None
    assert result.encode_flagged() is None
