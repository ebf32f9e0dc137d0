"""Stage 5, enrich: join a package with its sensor's metadata and convert to the canonical unit.

Canonical units are SI (with degC for temperature and rpm for rotational speed,
which analysts read directly). Conversions are affine: canonical = value * scale + shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from contracts import Quantity, SensorDescription

CANONICAL_UNIT: Final[dict[Quantity, str]] = {
    Quantity.ACCELERATION: "m/s2",
    Quantity.TEMPERATURE: "degC",
    Quantity.ELECTRIC_CURRENT: "A",
    Quantity.PRESSURE: "Pa",
    Quantity.ROTATIONAL_SPEED: "rpm",
    Quantity.VOLTAGE: "V",
    Quantity.POWER: "W",
    Quantity.FORCE: "N",
    Quantity.DISPLACEMENT: "m",
    Quantity.HUMIDITY: "%",
}

# (quantity, unit) -> (scale, shift) to the canonical unit.
_CONVERSIONS: Final[dict[tuple[Quantity, str], tuple[float, float]]] = {
    (Quantity.ACCELERATION, "g"): (9.80665, 0.0),
    (Quantity.ACCELERATION, "mm/s2"): (1e-3, 0.0),
    (Quantity.TEMPERATURE, "degF"): (5.0 / 9.0, -32.0 * 5.0 / 9.0),
    (Quantity.TEMPERATURE, "K"): (1.0, -273.15),
    (Quantity.ELECTRIC_CURRENT, "mA"): (1e-3, 0.0),
    (Quantity.PRESSURE, "bar"): (1e5, 0.0),
    (Quantity.PRESSURE, "mbar"): (1e2, 0.0),
    (Quantity.PRESSURE, "kPa"): (1e3, 0.0),
    (Quantity.PRESSURE, "MPa"): (1e6, 0.0),
    (Quantity.PRESSURE, "psi"): (6894.757293168, 0.0),
    (Quantity.ROTATIONAL_SPEED, "Hz"): (60.0, 0.0),
    (Quantity.ROTATIONAL_SPEED, "rad/s"): (60.0 / (2 * np.pi), 0.0),
    (Quantity.VOLTAGE, "mV"): (1e-3, 0.0),
    (Quantity.VOLTAGE, "kV"): (1e3, 0.0),
    (Quantity.POWER, "kW"): (1e3, 0.0),
    (Quantity.FORCE, "kN"): (1e3, 0.0),
    (Quantity.DISPLACEMENT, "mm"): (1e-3, 0.0),
    (Quantity.DISPLACEMENT, "um"): (1e-6, 0.0),
}


class UnknownUnitError(ValueError):
    """The metadata names a unit Vigil cannot convert to the quantity's canonical unit."""


def conversion(quantity: Quantity, unit: str) -> tuple[float, float]:
    """(scale, shift) from `unit` to the canonical unit of `quantity`."""
    if unit == CANONICAL_UNIT[quantity]:
        return (1.0, 0.0)
    try:
        return _CONVERSIONS[(quantity, unit)]
    except KeyError:
        raise UnknownUnitError(f"no conversion from {unit!r} to {CANONICAL_UNIT[quantity]!r} for {quantity}") from None


def to_canonical(values: np.ndarray, quantity: Quantity, unit: str) -> np.ndarray:
    scale, shift = conversion(quantity, unit)
    return values if (scale, shift) == (1.0, 0.0) else values * scale + shift


@dataclass(frozen=True, slots=True)
class SensorProfile:
    """What the pipeline needs of a sensor, with range and thresholds already in the canonical unit."""

    asset_id: str
    site: str
    location_on_machine: str
    quantity: Quantity
    source_unit: str
    unit: str
    sampling_rate_hz: float
    range_min: float
    range_max: float
    warning_low: float | None
    warning_high: float | None
    critical_low: float | None
    critical_high: float | None


def profile(sensor: SensorDescription) -> SensorProfile:
    """Flatten metadata into canonical units (raises UnknownUnitError for an unconvertible unit)."""
    scale, shift = conversion(sensor.quantity, sensor.unit)

    def conv(x: float | None) -> float | None:
        return None if x is None else x * scale + shift

    lo, hi = sensor.range.min * scale + shift, sensor.range.max * scale + shift
    t = sensor.thresholds
    return SensorProfile(
        asset_id=sensor.context.machine_id,
        site=sensor.context.site,
        location_on_machine=sensor.context.location_on_machine,
        quantity=sensor.quantity,
        source_unit=sensor.unit,
        unit=CANONICAL_UNIT[sensor.quantity],
        sampling_rate_hz=sensor.sampling_rate_hz,
        range_min=min(lo, hi),
        range_max=max(lo, hi),
        warning_low=conv(t.warning_low) if t else None,
        warning_high=conv(t.warning_high) if t else None,
        critical_low=conv(t.critical_low) if t else None,
        critical_high=conv(t.critical_high) if t else None,
    )
