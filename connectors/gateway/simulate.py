"""The plant's outgoing traffic: valid packages round by round, with bad ones and duplicates mixed in.

Time model. Round r covers the true-time window [start + r*W, start + (r+1)*W) for
every sensor (W = one vibration package). Each sensor samples on its own regular
grid, so a 10 Hz sensor's package holds W*10 samples. Sample times, window bounds
and `sent_at` are converted to the gateway's clock; `sent_at` is the true time the
package is handed to Kafka (`now_us()`), never earlier than the window end plus a
20 ms packaging latency, so data anchored in the past is sent like a gateway's
store-and-forward backlog.

Everything here is deterministic given the plant config and `now_us`.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from connectors.gateway.clock import to_datetime, to_us
from connectors.gateway.faults import FaultRates, Injected, features, inject, make_bad
from connectors.gateway.plant import Plant, PlantConfig, Sensor
from connectors.gateway.signals import KINDS, SensorKind, degradation, synthesize, to_unit
from contracts import EdgePackage, Samples, Window

LATENCY_US: Final = 20_000
DUPLICATE_HISTORY: Final = 256  # how far back a re-send may reach (a gateway's retry buffer)

Category = Literal["valid", "bad", "duplicate"]


@dataclass(frozen=True)
class Outgoing:
    """One message for `edge.packages.v1`, with what the report needs to know about it."""

    category: Category
    key: bytes
    value: bytes
    gateway_id: str
    sensor_kind: str
    package_id: uuid.UUID | None = None
    payload: str | None = None  # samples | features, for valid packages
    reason: str | None = None  # ReasonCode of a bad package, "duplicate" for a re-send
    samples: int = 0
    injected: Injected = field(default_factory=Injected)


def wall_clock_us() -> int:
    return time.time_ns() // 1000


def sample_times(plant: Plant, sensor: Sensor, round_: int) -> NDArray[np.int64]:
    """True sample times (µs since epoch) of `sensor` inside round `round_`'s window."""
    lo, hi = sensor.sample_range(plant.window_us, round_)
    k = np.arange(lo, hi, dtype=np.float64)
    return plant.start_us + np.rint(k * (1e6 / sensor.rate_hz)).astype(np.int64)


def true_values(
    plant: Plant, sensor: Sensor, t_true: NDArray[np.int64], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Clean signal in the sensor's declared unit, rounded to its resolution."""
    ts = (t_true - plant.start_us).astype(np.float64) / 1e6
    wear = degradation(ts / plant.config.horizon_s) if sensor.machine.degrading else np.zeros(1)
    values = to_unit(synthesize(sensor.kind, sensor.machine.params, ts, wear, rng), sensor.kind, sensor.unit)
    return np.round(values, KINDS[sensor.kind].decimals)


def package_id(plant: Plant, sensor: Sensor, round_: int) -> uuid.UUID:
    # The start is part of the name so two runs of one plant never share ids (the stream would drop them).
    return uuid.uuid5(sensor.sensor_id, f"{plant.start_us}/{round_}")


def build(
    plant: Plant, sensor: Sensor, round_: int, rates: FaultRates, sent_true_us: int, as_features: bool = False
) -> tuple[EdgePackage, Injected] | None:
    """The package of `sensor` for round `round_` (None if its window holds no sample)."""
    t_true = sample_times(plant, sensor, round_)
    if t_true.size == 0:
        return None
    rng = np.random.default_rng([plant.config.seed, 1, sensor.index, round_])
    values, keep, injected = inject(true_values(plant, sensor, t_true, rng), KINDS[sensor.kind].spike, rates, rng)
    clock = plant.clock(sensor.gateway_id)
    w0 = plant.start_us + round_ * plant.window_us
    bounds = clock.to_gateway_us(np.array([w0, w0 + plant.window_us], dtype=np.int64))
    sent_true = max(sent_true_us, w0 + plant.window_us + LATENCY_US)
    if keep is not None:
        values, t_true = values[keep], t_true[keep]
    summary = features(values) if as_features else None
    samples = None
    if summary is not None:
        injected = Injected()  # nothing raw is sent, so no sample fault reaches the stream
    else:
        v: list[float | None] = values.tolist()
        for i in np.flatnonzero(np.isnan(values)).tolist():
            v[i] = None  # NaN marks a failed reading; the wire says null
        samples = Samples.model_construct(t=clock.to_gateway_us(t_true).tolist(), v=v)
    # model_construct skips validation: 2-3x faster, and the unit tests prove these packages validate.
    package = EdgePackage.model_construct(
        package_id=package_id(plant, sensor, round_),
        gateway_id=sensor.gateway_id,
        sensor_id=sensor.sensor_id,
        sent_at=to_datetime(clock.gateway_us(sent_true)),
        clock_offset_ms=clock.reported_offset_ms(sent_true),
        window=Window.model_construct(start=to_datetime(int(bounds[0])), end=to_datetime(int(bounds[1]))),
        samples=samples,
        features=summary,
    )
    return package, injected


def send_order(plant: Plant) -> list[Sensor]:
    """Interleave gateways within a round, as concurrent gateways would reach the broker."""
    per_gateway = len(plant.sensors) // len(plant.gateways)
    return sorted(plant.sensors, key=lambda s: (s.index % per_gateway, s.index // per_gateway))


def emit(
    plant: Plant, rates: FaultRates, now_us: Callable[[], int] = wall_clock_us, rounds: int | None = None
) -> Iterator[Outgoing]:
    """Messages in send order; endless unless `rounds` is given. Lazy: each is built when asked for."""
    history: deque[Outgoing] = deque(maxlen=DUPLICATE_HISTORY)
    order = send_order(plant)
    round_ = 0
    while rounds is None or round_ < rounds:
        for sensor in order:
            pick = np.random.default_rng([plant.config.seed, 2, sensor.index, round_])
            u_features, u_bad, u_dup = pick.random(3)
            sent = now_us()
            as_features = sensor.kind is SensorKind.VIBRATION and u_features < rates.features_rate
            built = build(plant, sensor, round_, rates, sent, as_features)
            if built is None:
                continue
            package, injected = built
            wire = package.to_wire()
            valid = Outgoing(
                "valid",
                sensor.key,
                wire,
                sensor.gateway_id,
                sensor.kind.value,
                package.package_id,
                package.kind,
                samples=len(package.samples.t) if package.samples else 0,
                injected=injected,
            )
            yield valid
            history.append(valid)
            if u_bad < rates.bad_rate:
                reason = rates.bad_kinds[int(pick.integers(0, len(rates.bad_kinds)))]
                if package.samples is None:  # bad packages are built from raw samples
                    built_raw = build(plant, sensor, round_, rates, sent)
                    assert built_raw is not None
                    wire = built_raw[0].to_wire()
                bad = make_bad(wire, reason, now_us(), pick)
                yield Outgoing("bad", sensor.key, bad, sensor.gateway_id, sensor.kind.value, reason=reason.value)
            if u_dup < rates.duplicate_rate:
                again = history[int(pick.integers(0, len(history)))]
                yield Outgoing(
                    "duplicate",
                    again.key,
                    again.value,
                    again.gateway_id,
                    again.sensor_kind,
                    again.package_id,
                    again.payload,
                    reason="duplicate",
                )
        round_ += 1


def anchored(config: PlantConfig, packages: int, now: datetime, horizon_s: float | None = None) -> PlantConfig:
    """Place a run of about `packages` messages so that its last window ends at `now`.

    Data then never lies ahead of the broker's clock however fast it is sent, and wear
    reaches failure at the end of the run unless `horizon_s` says otherwise.
    """
    sensors = config.gateways * config.machines_per_gateway * len(SensorKind)
    rounds = max(1, math.ceil(packages / sensors))
    span_us = rounds * config.window_us
    start = to_datetime(to_us(now) - span_us)
    return config.model_copy(update={"start": start, "horizon_s": horizon_s or span_us / 1e6})
