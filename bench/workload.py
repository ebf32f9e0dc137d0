"""The benchmark's packages: the gateway simulator's vibration sensors, every package exactly N samples.

Only vibration sensors are used because only they sample at the configured rate:
a 1000-sample package is one second of a 1 kHz accelerometer, while the plant's
10 Hz sensors would send 10-sample packages. Sample faults stay on (spikes, null
readings, stuck runs: the stage grades them); gaps are off so every package holds
exactly N samples, and bad packages and duplicates are off so every package
yields exactly one clean record. Each phase gets its own seed, hence its own
sensors, so one phase's sensor state (quality tail, alert episodes, windows)
never meets another's.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from connectors.gateway.faults import FaultRates
from connectors.gateway.plant import Plant, PlantConfig, Sensor, build_plant, describe_sensor
from connectors.gateway.signals import SensorKind
from connectors.gateway.simulate import build, wall_clock_us
from contracts import EdgePackage, SensorDescription
from contracts.package import Samples

RATES: Final = FaultRates(gap_rate=0.0, bad_rate=0.0, duplicate_rate=0.0)
VIBRATION_HZ: Final = 1000.0
SENSORS: Final = 50  # 2 gateways x 25 machines, one accelerometer each
# Latency phase: per sensor, HOT_ROUNDS of every CYCLE packages sit HOT_OFFSET above the 0-mean signal,
# past the accelerometers' warning_high of 8 m/s2 (critical is 16). With open_after=2 and close_after=3
# (streams/rules.toml) each cycle opens one episode on its 2nd hot package and closes it on the 3rd clear one.
HOT_OFFSET: Final = 12.0
CYCLE: Final = 10
HOT_ROUNDS: Final = 2
OPEN_ROUND, CLOSE_ROUND = HOT_ROUNDS - 1, HOT_ROUNDS + 2


@dataclass(frozen=True)
class Message:
    key: bytes
    value: bytes
    package_id: uuid.UUID
    sensor_id: uuid.UUID
    window_end_us: int
    hot: bool


@dataclass(frozen=True)
class Workload:
    plant: Plant
    sensors: tuple[Sensor, ...]
    samples: int

    @property
    def window_s(self) -> float:
        return self.plant.window_us / 1e6

    def descriptions(self, now: datetime) -> list[SensorDescription]:
        return [describe_sensor(self.plant, s, now) for s in self.sensors]

    def message(self, index: int, hot: bool = False) -> Message:
        """Package `index` in send order: sensors round-robin, so every partition gets its share."""
        sensor = self.sensors[index % len(self.sensors)]
        built = build(self.plant, sensor, index // len(self.sensors), RATES, wall_clock_us())
        assert built is not None  # a 1 kHz sensor always has samples in a >= 1 ms window
        package = built[0]
        if hot:
            package = _shifted(package, HOT_OFFSET)
        assert package.samples is not None
        assert len(package.samples.v) == self.samples
        end_us = round(package.window.end.timestamp() * 1e6)
        return Message(sensor.key, package.to_wire(), package.package_id, sensor.sensor_id, end_us, hot)

    def prebuilt(self, count: int) -> list[Message]:
        return [self.message(i) for i in range(count)]

    def alerting(self, count: int) -> Iterator[Message]:
        """Packages for the latency phase, built when asked for so that `sent_at` is the real send time."""
        for i in range(count):
            yield self.message(i, hot=(i // len(self.sensors)) % CYCLE < HOT_ROUNDS)

    def expected_alerts(self, count: int) -> int:
        """Open and close alerts the `alerting(count)` schedule must raise (threshold rule only)."""
        rounds = [i // len(self.sensors) for i in range(count)]
        return sum(r % CYCLE in (OPEN_ROUND, CLOSE_ROUND) for r in rounds)


def _shifted(package: EdgePackage, offset: float) -> EdgePackage:
    assert package.samples is not None
    values = [None if v is None else round(v + offset, 3) for v in package.samples.v]
    return package.model_copy(update={"samples": Samples.model_construct(t=package.samples.t, v=values)})


def workload(seed: int, samples: int, packages: int) -> Workload:
    """A plant whose `packages` packages all lie in the past when sending starts (none is a future timestamp)."""
    config = PlantConfig(
        seed=seed,
        site="bench",
        gateways=2,
        machines_per_gateway=SENSORS // 2,
        samples_per_package=samples,
        vibration_rate_hz=VIBRATION_HZ,
        degrading=0,  # no wear: alerts come only from the latency phase's deliberate level shifts
        skewed_gateways=0,  # well-synced gateways report NTP offsets: no clock_skew alerts
        fahrenheit=False,
    )
    rounds = math.ceil(packages / SENSORS) + 1
    start = datetime.now(UTC) - timedelta(microseconds=rounds * config.window_us) - timedelta(seconds=1)
    plant = build_plant(config.model_copy(update={"start": start}))
    sensors = tuple(s for s in plant.sensors if s.kind is SensorKind.VIBRATION)
    return Workload(plant, sensors, samples)


def pace(index: int, started: float, rate: float) -> None:
    """Sleep until package `index` is due at `rate` per second.

    Open loop: the schedule, not the stage, sets the send times; a sender that fell
    behind catches up instead of stretching the schedule, which would hide queueing.
    """
    delay = started + index / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
