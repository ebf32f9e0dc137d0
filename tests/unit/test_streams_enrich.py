"""streams.enrich: conversions to the canonical unit, and sensor profiles with range and thresholds converted."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import Quantity, SensorDescription
from streams.enrich import _CONVERSIONS, CANONICAL_UNIT, UnknownUnitError, conversion, profile, to_canonical

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts" / "examples"

# Every unit Vigil converts, plus every canonical unit (identity).
ALL_UNITS = sorted(
    {*_CONVERSIONS, *((quantity, unit) for quantity, unit in CANONICAL_UNIT.items())},
    key=lambda pair: (pair[0].value, pair[1]),
)


def _sensor(**overrides: Any) -> SensorDescription:
    data = json.loads((EXAMPLES / "sensor_description.json").read_text())
    data.update(overrides)
    return SensorDescription.model_validate(data)


def _convert(value: float, quantity: Quantity, unit: str) -> float:
    return float(to_canonical(np.array([value]), quantity, unit)[0])


@pytest.mark.parametrize(
    ("quantity", "unit", "value", "expected"),
    [
        (Quantity.TEMPERATURE, "degF", 32.0, 0.0),
        (Quantity.TEMPERATURE, "degF", 212.0, 100.0),
        (Quantity.TEMPERATURE, "degF", -40.0, -40.0),
        (Quantity.TEMPERATURE, "K", 273.15, 0.0),
        (Quantity.TEMPERATURE, "K", 373.15, 100.0),
        (Quantity.PRESSURE, "bar", 1.0, 1e5),
        (Quantity.PRESSURE, "bar", 2.5, 2.5e5),
        (Quantity.PRESSURE, "psi", 1.0, 6894.757293168),
        (Quantity.PRESSURE, "psi", 100.0, 689475.7293168),
        (Quantity.ACCELERATION, "g", 1.0, 9.80665),
        (Quantity.ACCELERATION, "g", -2.0, -19.6133),
    ],
)
def test_known_conversions(quantity: Quantity, unit: str, value: float, expected: float) -> None:
    assert _convert(value, quantity, unit) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("quantity", "unit"), list(CANONICAL_UNIT.items()))
def test_canonical_unit_is_identity(quantity: Quantity, unit: str) -> None:
    assert conversion(quantity, unit) == (1.0, 0.0)
    values = np.array([-1.5, 0.0, 42.125])
    assert np.array_equal(to_canonical(values, quantity, unit), values)


@pytest.mark.parametrize(
    ("quantity", "unit"),
    [(Quantity.TEMPERATURE, "furlong"), (Quantity.PRESSURE, "degF"), (Quantity.ACCELERATION, "bar")],
)
def test_unknown_unit_names_unit_and_canonical_unit(quantity: Quantity, unit: str) -> None:
    with pytest.raises(UnknownUnitError) as caught:
        conversion(quantity, unit)
    message = str(caught.value)
    assert repr(unit) in message
    assert repr(CANONICAL_UNIT[quantity]) in message
    assert isinstance(caught.value, ValueError)


def test_unknown_unit_fails_profile() -> None:
    with pytest.raises(UnknownUnitError, match="'furlong'"):
        profile(_sensor(unit="furlong"))


def test_profile_of_canonical_sensor_is_unchanged() -> None:
    meta = profile(_sensor())
    assert (meta.unit, meta.source_unit, meta.quantity) == ("degC", "degC", Quantity.TEMPERATURE)
    assert (meta.range_min, meta.range_max) == (-40.0, 150.0)
    assert (meta.warning_high, meta.critical_high) == (80.0, 95.0)
    assert meta.warning_low is None
    assert meta.critical_low is None
    assert (meta.asset_id, meta.site, meta.location_on_machine) == ("press-01", "plant-a", "main bearing, drive side")
    assert meta.sampling_rate_hz == 10.0


def test_profile_converts_range_and_thresholds() -> None:
    sensor = _sensor(
        unit="degF",
        range={"min": 32.0, "max": 212.0},
        thresholds={"warning_low": 41.0, "warning_high": 176.0, "critical_high": 203.0},
    )
    meta = profile(sensor)
    assert meta.unit == "degC"
    assert meta.source_unit == "degF"
    assert meta.range_min == pytest.approx(0.0, abs=1e-9)
    assert meta.range_max == pytest.approx(100.0)
    assert meta.warning_low == pytest.approx(5.0)
    assert meta.warning_high == pytest.approx(80.0)
    assert meta.critical_high == pytest.approx(95.0)
    assert meta.critical_low is None


def test_profile_without_thresholds() -> None:
    data = json.loads((EXAMPLES / "sensor_description.json").read_text())
    del data["thresholds"]
    meta = profile(SensorDescription.model_validate(data))
    assert (meta.warning_low, meta.warning_high, meta.critical_low, meta.critical_high) == (None, None, None, None)


@settings(max_examples=200, deadline=None)
@given(
    pair=st.sampled_from(ALL_UNITS),
    values=st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=20),
)
def test_conversion_round_trips(pair: tuple[Quantity, str], values: list[float]) -> None:
    quantity, unit = pair
    scale, shift = conversion(quantity, unit)
    assert scale > 0
    original = np.asarray(values, dtype=np.float64)
    canonical = to_canonical(original, quantity, unit)
    assert canonical.shape == original.shape
    back = (canonical - shift) / scale
    for before, after in zip(original.tolist(), back.tolist(), strict=True):
        assert math.isclose(after, before, rel_tol=1e-9, abs_tol=1e-6)
