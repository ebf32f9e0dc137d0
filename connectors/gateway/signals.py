"""Sensor kinds and their signals: what a healthy machine measures, and how wear changes it.

Every generator is vectorised over a window of sample times (seconds since the
plant's start, true time) and takes the machine's degradation level per sample
(0 = healthy, 1 = about to fail).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np
from numpy.typing import NDArray

from contracts import MeasurementRange, Quantity, Thresholds

# Degradation grows like exp(GROWTH * progress): barely visible for most of the run, steep near failure.
GROWTH: Final = 5.0
# Bearing outer-race defect frequency as a multiple of running speed (typical deep-groove bearing).
BPFO_ORDER: Final = 3.57


class SensorKind(StrEnum):
    VIBRATION = "vibration"
    TEMPERATURE = "temperature"
    MOTOR_CURRENT = "motor_current"
    PRESSURE = "pressure"


@dataclass(frozen=True)
class KindSpec:
    quantity: Quantity
    unit: str
    rate_hz: float  # default; vibration's comes from PlantConfig
    decimals: int  # sensor resolution: values are rounded to it, which also keeps the JSON short
    spike: float  # typical outlier magnitude in the canonical unit
    label: dict[str, str]
    location: str
    purpose: str
    model: str


KINDS: Final[dict[SensorKind, KindSpec]] = {
    SensorKind.VIBRATION: KindSpec(
        Quantity.ACCELERATION,
        "m/s2",
        1000.0,
        3,
        12.0,
        {
            "en": "Drive-end bearing vibration",
            "de": "Lagerschwingung Antriebsseite",
            "it": "Vibrazione cuscinetto lato comando",
        },
        "drive-end bearing, radial",
        "bearing wear monitoring",
        "ACC-100 IEPE accelerometer",
    ),
    SensorKind.TEMPERATURE: KindSpec(
        Quantity.TEMPERATURE,
        "degC",
        10.0,
        2,
        15.0,
        {"en": "Main bearing temperature", "de": "Hauptlagertemperatur", "it": "Temperatura cuscinetto principale"},
        "main bearing housing",
        "bearing overheating detection",
        "PT100 RTD probe",
    ),
    SensorKind.MOTOR_CURRENT: KindSpec(
        Quantity.ELECTRIC_CURRENT,
        "A",
        10.0,
        3,
        5.0,
        {
            "en": "Main motor current (RMS)",
            "de": "Hauptmotorstrom (effektiv)",
            "it": "Corrente motore principale (RMS)",
        },
        "motor terminal box, phase L1",
        "motor load monitoring",
        "CT-50 current transducer",
    ),
    SensorKind.PRESSURE: KindSpec(
        Quantity.PRESSURE,
        "bar",
        10.0,
        2,
        40.0,
        {"en": "Hydraulic system pressure", "de": "Hydraulikdruck", "it": "Pressione impianto idraulico"},
        "hydraulic manifold, pump outlet",
        "hydraulic leakage detection",
        "PT-400 pressure transmitter",
    ),
}


@dataclass(frozen=True)
class MachineParams:
    """What makes one machine differ from its siblings (drawn from the plant seed)."""

    running_hz: float  # shaft speed: a 4-pole motor on 50 Hz mains runs just under 25 Hz
    bearing_c: float  # bearing temperature at normal load
    current_a: float  # motor current at normal load
    pressure_bar: float  # hydraulic working pressure
    phase: float  # radians; de-synchronises the machines' cycles

    @classmethod
    def draw(cls, rng: np.random.Generator) -> MachineParams:
        return cls(
            running_hz=round(float(rng.uniform(23.5, 29.5)), 3),
            bearing_c=round(float(rng.uniform(38.0, 50.0)), 2),
            current_a=round(float(rng.uniform(10.0, 16.0)), 2),
            pressure_bar=round(float(rng.uniform(150.0, 200.0)), 1),
            phase=float(rng.uniform(0.0, 2 * np.pi)),
        )


def degradation(progress: NDArray[np.float64]) -> NDArray[np.float64]:
    """Wear level in [0, 1] for run progress in [0, 1] (clipped): exponential toward failure."""
    p = np.clip(progress, 0.0, 1.0)
    wear: NDArray[np.float64] = np.expm1(GROWTH * p) / np.expm1(GROWTH)
    return wear


def synthesize(
    kind: SensorKind, m: MachineParams, ts: NDArray[np.float64], d: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Values in the kind's canonical unit at times `ts` (s) for wear levels `d`."""
    n = ts.size
    if kind is SensorKind.VIBRATION:
        w = 2 * np.pi * m.running_hz * ts + m.phase
        # 1x (unbalance) and 2x (misalignment) harmonics grow with wear; a bearing defect tone appears,
        # amplitude-modulated by shaft rotation as a damaged race passes the load zone.
        x = 1.8 * (1 + 1.5 * d) * np.sin(w) + 0.7 * (1 + 2 * d) * np.sin(2 * w + 0.4)
        if np.any(d):  # healthy machines (most) skip two trig passes
            x += 2.5 * d * 0.5 * (1 + np.cos(w)) * np.sin(BPFO_ORDER * w)
        return x + rng.normal(0.0, 1.0, n) * (0.4 * (1 + 2 * d))
    if kind is SensorKind.TEMPERATURE:
        # Slow thermal cycle with the shift pattern (30 min), plus frictional heating from wear.
        cycle = 2.0 * np.sin(2 * np.pi * ts / 1800.0 + m.phase)
        return m.bearing_c + cycle + 45.0 * d + rng.normal(0.0, 0.05, n)
    if kind is SensorKind.MOTOR_CURRENT:
        # RMS of the 50 Hz phase current, reported at 10 Hz: load varies over a 2 min cycle; wear adds friction.
        load = 1 + 0.05 * np.sin(2 * np.pi * ts / 120.0 + m.phase) + 0.35 * d
        return m.current_a * load + rng.normal(0.0, 0.08, n)
    # Pressure follows the press stroke (8 s); internal leakage lowers it and makes it noisier.
    stroke = 0.12 * m.pressure_bar * np.sin(2 * np.pi * ts / 8.0 + m.phase)
    return m.pressure_bar * (1 - 0.25 * d) + stroke + rng.normal(0.0, 1.0, n) * (0.8 * (1 + 2 * d))


def to_unit(values: NDArray[np.float64], kind: SensorKind, unit: str) -> NDArray[np.float64]:
    """Canonical unit -> the sensor's declared unit (only temperature has an alternative here)."""
    if kind is SensorKind.TEMPERATURE and unit == "degF":
        return values * 1.8 + 32.0
    return values


def limits(kind: SensorKind, m: MachineParams, unit: str) -> tuple[MeasurementRange, Thresholds]:
    """Measuring range and alert thresholds in the sensor's unit; a degrading machine crosses warning."""
    if kind is SensorKind.VIBRATION:
        return MeasurementRange(min=-160.0, max=160.0), Thresholds(
            warning_low=-8.0, warning_high=8.0, critical_low=-16.0, critical_high=16.0
        )
    if kind is SensorKind.TEMPERATURE:
        if unit == "degF":
            return MeasurementRange(min=-40.0, max=302.0), Thresholds(warning_high=176.0, critical_high=203.0)
        return MeasurementRange(min=-40.0, max=150.0), Thresholds(warning_high=80.0, critical_high=95.0)
    if kind is SensorKind.MOTOR_CURRENT:
        i = m.current_a
        return MeasurementRange(min=0.0, max=100.0), Thresholds(
            warning_high=round(1.2 * i, 2), critical_high=round(1.4 * i, 2)
        )
    p = m.pressure_bar
    return MeasurementRange(min=0.0, max=400.0), Thresholds(
        warning_low=round(0.8 * p, 1),
        critical_low=round(0.65 * p, 1),
        warning_high=round(1.3 * p, 1),
        critical_high=round(1.45 * p, 1),
    )
