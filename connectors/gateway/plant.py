"""The plant model: a seeded, deterministic set of gateways, machines and sensors.

The same `PlantConfig` (seed included) always yields the same names, UUIDs,
machine parameters and clocks, so a test can rebuild the plant a run used.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Final, Self

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from connectors.gateway.clock import MAX_DRIFT_PPM, ClockModel, draw_clocks, to_us
from connectors.gateway.signals import KINDS, MachineParams, SensorKind, limits
from contracts import MAX_SAMPLES, SensorContext, SensorDescription

# uuid5 namespace of simulated sensors: stable across runs and machines.
NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://w3id.org/vigil/simulated-plant")

# (machine_kind, id prefix, labels with {n} for the machine number)
MACHINE_KINDS: Final = (
    (
        "hydraulic_press",
        "press",
        {"en": "Hydraulic press {n}", "de": "Hydraulikpresse {n}", "it": "Pressa idraulica {n}"},
    ),
    (
        "injection_moulding_machine",
        "imm",
        {"en": "Injection moulding machine {n}", "de": "Spritzgießmaschine {n}", "it": "Pressa a iniezione {n}"},
    ),
    (
        "hydraulic_pump_unit",
        "pump",
        {"en": "Hydraulic pump unit {n}", "de": "Hydraulikaggregat {n}", "it": "Centralina idraulica {n}"},
    ),
)


class PlantConfig(BaseModel):
    """Everything that shapes the plant and its signals; faults are configured separately."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(default=42, ge=0)
    site: str = Field(default="plant-a", pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    gateways: int = Field(default=2, ge=1, le=99)
    machines_per_gateway: int = Field(default=3, ge=1, le=99)
    samples_per_package: int = Field(default=1000, ge=1, le=MAX_SAMPLES, description="per vibration package")
    vibration_rate_hz: float = Field(default=1000.0, gt=0, le=100_000)
    degrading: int | tuple[str, ...] = Field(default=1, description="how many machines wear out, or their ids")
    skewed_gateways: int = Field(default=1, ge=0)
    max_clock_offset_ms: float = Field(default=1500.0, ge=0, le=3_600_000)
    max_drift_ppm: float = Field(default=50.0, ge=0, le=MAX_DRIFT_PPM)
    fahrenheit: bool = Field(default=True, description="one temperature sensor reports in degF")
    start: AwareDatetime = Field(default=datetime(2026, 11, 23, 8, 0, tzinfo=UTC), description="true time of round 0")
    horizon_s: float = Field(default=3600.0, gt=0, description="simulated time over which wear reaches failure")

    @model_validator(mode="after")
    def _degrading_fits(self) -> Self:
        if isinstance(self.degrading, int) and not 0 <= self.degrading <= self.gateways * self.machines_per_gateway:
            raise ValueError(
                f"degrading={self.degrading} but the plant has {self.gateways * self.machines_per_gateway} machines"
            )
        return self

    @property
    def window_us(self) -> int:
        """Every sensor packages the same collection window: the span of one vibration package."""
        return max(1, round(self.samples_per_package / self.vibration_rate_hz * 1e6))

    @property
    def start_us(self) -> int:
        return to_us(self.start)


@dataclass(frozen=True)
class Machine:
    machine_id: str
    machine_kind: str
    label: dict[str, str]
    gateway_id: str
    params: MachineParams
    degrading: bool


@dataclass(frozen=True)
class Sensor:
    index: int  # position in Plant.sensors; seeds the sensor's random streams
    sensor_id: uuid.UUID
    kind: SensorKind
    unit: str
    rate_hz: float
    machine: Machine
    gateway_id: str

    @property
    def key(self) -> bytes:
        """Kafka key: the sensor UUID as text, so every package of a sensor lands on one partition."""
        return str(self.sensor_id).encode()

    def sample_range(self, window_us: int, round_: int) -> tuple[int, int]:
        """Indices [lo, hi) of this sensor's sample grid that fall inside round `round_`'s window."""
        per_us = self.rate_hz / 1e6
        lo = math.ceil(round_ * window_us * per_us - 1e-9)
        hi = math.ceil((round_ + 1) * window_us * per_us - 1e-9)
        return lo, hi


@dataclass(frozen=True)
class Gateway:
    gateway_id: str
    clock: ClockModel
    machines: tuple[Machine, ...]


@dataclass(frozen=True)
class Plant:
    config: PlantConfig
    gateways: tuple[Gateway, ...]
    sensors: tuple[Sensor, ...]
    start_us: int  # config.start, precomputed: read for every package
    window_us: int

    @property
    def machines(self) -> tuple[Machine, ...]:
        return tuple(m for g in self.gateways for m in g.machines)

    @property
    def degrading(self) -> list[str]:
        return [m.machine_id for m in self.machines if m.degrading]

    def clock(self, gateway_id: str) -> ClockModel:
        return self._clocks[gateway_id]

    @cached_property
    def _clocks(self) -> dict[str, ClockModel]:
        return {g.gateway_id: g.clock for g in self.gateways}


def build_plant(config: PlantConfig) -> Plant:
    rng = np.random.default_rng([config.seed, 0])
    n_machines = config.gateways * config.machines_per_gateway
    names = [f"{MACHINE_KINDS[i % len(MACHINE_KINDS)][1]}-{i + 1:02d}" for i in range(n_machines)]
    params = [MachineParams.draw(rng) for _ in range(n_machines)]
    if isinstance(config.degrading, int):
        wearing = {names[int(i)] for i in rng.choice(n_machines, size=config.degrading, replace=False)}
    else:
        unknown = sorted(set(config.degrading) - set(names))
        if unknown:
            raise ValueError(f"unknown machines {unknown}; the plant has {names}")
        wearing = set(config.degrading)
    clocks = draw_clocks(
        rng, config.gateways, config.skewed_gateways, config.max_clock_offset_ms, config.max_drift_ppm, config.start_us
    )
    gateways: list[Gateway] = []
    sensors: list[Sensor] = []
    for g in range(config.gateways):
        gateway_id = f"gw-{config.site}-{g + 1:02d}"
        machines: list[Machine] = []
        for j in range(config.machines_per_gateway):
            i = g * config.machines_per_gateway + j
            kind, _, labels = MACHINE_KINDS[i % len(MACHINE_KINDS)]
            machine = Machine(
                machine_id=names[i],
                machine_kind=kind,
                label={lang: text.format(n=i + 1) for lang, text in labels.items()},
                gateway_id=gateway_id,
                params=params[i],
                degrading=names[i] in wearing,
            )
            machines.append(machine)
            for kind_ in SensorKind:
                # One retrofitted sensor reports in degF so the stream's unit conversion has work to do.
                fahrenheit = (
                    config.fahrenheit and kind_ is SensorKind.TEMPERATURE and g == config.gateways - 1 and j == 0
                )
                rate = config.vibration_rate_hz if kind_ is SensorKind.VIBRATION else KINDS[kind_].rate_hz
                sensors.append(
                    Sensor(
                        index=len(sensors),
                        sensor_id=uuid.uuid5(NAMESPACE, f"{config.seed}/{gateway_id}/{machine.machine_id}/{kind_}"),
                        kind=kind_,
                        unit="degF" if fahrenheit else KINDS[kind_].unit,
                        rate_hz=rate,
                        machine=machine,
                        gateway_id=gateway_id,
                    )
                )
        gateways.append(Gateway(gateway_id, clocks[g], tuple(machines)))
    return Plant(config, tuple(gateways), tuple(sensors), config.start_us, config.window_us)


def describe_sensor(plant: Plant, sensor: Sensor, updated_at: datetime) -> SensorDescription:
    spec = KINDS[sensor.kind]
    measuring_range, thresholds = limits(sensor.kind, sensor.machine.params, sensor.unit)
    return SensorDescription(
        sensor_id=sensor.sensor_id,
        label=spec.label,
        quantity=spec.quantity,
        unit=sensor.unit,
        sampling_rate_hz=sensor.rate_hz,
        range=measuring_range,
        thresholds=thresholds,
        context=SensorContext(
            machine_id=sensor.machine.machine_id,
            machine_label=sensor.machine.label,
            machine_kind=sensor.machine.machine_kind,
            location_on_machine=spec.location,
            site=plant.config.site,
            purpose=spec.purpose,
        ),
        updated_at=updated_at,
        extensions={
            "schema:manufacturer": "Vigil Simulated Instruments",
            "schema:model": spec.model,
            "schema:serialNumber": f"SIM-{sensor.sensor_id.hex[:10].upper()}",
        },
    )


def sensor_descriptions(plant: Plant, updated_at: datetime) -> list[SensorDescription]:
    return [describe_sensor(plant, s, updated_at) for s in plant.sensors]
