"""Health scores: how far each sensor's day is from its own normal, and from its peers'. Pure (numpy only).

A sensor's day is described by features of gold.daily_sensor_stats. With at least
`min_history` earlier days of its own on which its machine was not unhealthy
(`healthy_history`), each feature is compared with that history; a fresh
sensor (no history yet) is compared with its peers on the same day: the other
sensors of the same site and quantity (and machine kind, when at least three
such peers exist). The comparison is a robust z-score (distance
from the median in units of 1.4826 x MAD, with a floor of 5 % of the median (15 %
against peers, whose normal levels differ) so a very steady reference does not
turn noise into alarms), capped at 10.

A sensor's deviation is the mean of its two largest feature z-scores, or its drift when larger:
the relative trend of its daily RMS over the history, scaled so that a 10 %
change across the trailing window counts 1. A machine's deviation is the mean
of its sensors' (a worn machine deviates on most sensors at once; a healthy one
with an unusual level on one sensor does not), leaving out sensors with nothing
to compare with (basis `none`: no evidence either way), and its score is
100 * exp(-deviation / 3): 100 = behaves like its history and peers, 50 at a
deviation of about 2.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np

FEATURES: Final = ("mean", "std", "rms", "p95", "kurtosis", "crest_factor")
Z_CAP: Final = 10.0
SCALE: Final = 3.0  # deviation that brings the score to 100 / e
# The z-score's scale is at least this share of the reference median. Peers get a wider floor: machines of
# one kind differ in their normal levels (a bearing runs at 38 or at 50 degC), a sensor's own days do not.
HISTORY_FLOOR: Final = 0.05
PEER_FLOOR: Final = 0.15


@dataclass(frozen=True)
class SensorDay:
    sensor_id: str
    asset_id: str
    site: str
    quantity: str
    machine_kind: str | None
    day: date
    features: dict[str, float | None]


@dataclass(frozen=True)
class SensorScore:
    sensor_id: str
    asset_id: str
    quantity: str
    basis: str  # history | peers | none
    deviation: float
    worst_feature: str
    rms_trend_per_day: float | None


@dataclass(frozen=True)
class MachineScore:
    asset_id: str
    site: str
    machine_kind: str | None
    score: float
    deviation: float
    basis: str
    worst: SensorScore
    rms_trend_per_day: float | None
    sensors: int


def robust_z(value: float, reference: list[float], floor: float = HISTORY_FLOOR) -> float:
    ref = np.asarray(reference, dtype=np.float64)
    median = float(np.median(ref))
    mad = 1.4826 * float(np.median(np.abs(ref - median)))
    scale = max(mad, floor * abs(median), 1e-9)
    return min(abs(value - median) / scale, Z_CAP)


def relative_trend(values: list[float], days: list[float] | None = None) -> float | None:
    """Least-squares slope per day of `values`, relative to their median. `days` are their days (day numbers);
    None: one per consecutive day. A history with gaps (an idle plant) must give its real days, or the slope
    is steeper than it is."""
    if len(values) < 3:
        return None
    y = np.asarray(values, dtype=np.float64)
    x = np.asarray(days if days is not None else range(y.size), dtype=np.float64)
    slope = float(np.polyfit(x, y, 1)[0])
    median = float(np.median(y))
    return slope / median if median else None


def healthy_history(history: list[SensorDay], unhealthy: set[tuple[str, str, date]]) -> list[SensorDay]:
    """The days a sensor's normal is learnt from: those its machine was not scored unhealthy ((site, asset id,
    day) in `unhealthy`). With its sick days as its normal, a machine repaired after days of wear deviates from
    them and stays unhealthy until they leave the window, and a slowly wearing one makes its wear its normal."""
    return [d for d in history if (d.site, d.asset_id, d.day) not in unhealthy]


def _peers(day: SensorDay, today: list[SensorDay]) -> list[SensorDay]:
    same = [s for s in today if s.sensor_id != day.sensor_id and (s.site, s.quantity) == (day.site, day.quantity)]
    kind = [s for s in same if s.machine_kind == day.machine_kind]
    return kind if len(kind) >= 3 else same


def score_sensor(
    day: SensorDay, today: list[SensorDay], history: list[SensorDay], *, min_history: int, window_days: int
) -> SensorScore:
    own = sorted((h for h in history if h.sensor_id == day.sensor_id and h.day < day.day), key=lambda h: h.day)
    if len(own) >= min_history:
        basis, references, floor = "history", own, HISTORY_FLOOR
    else:
        basis, references, floor = "peers", _peers(day, today), PEER_FLOOR
    zs: dict[str, float] = {}
    for feature in FEATURES:
        value = day.features.get(feature)
        reference = [v for r in references if (v := r.features.get(feature)) is not None and math.isfinite(v)]
        if value is not None and math.isfinite(value) and len(reference) >= 2:
            zs[feature] = robust_z(value, reference, floor)
    ranked = sorted(zs.items(), key=lambda kv: kv[1], reverse=True)
    # The mean of the two largest: one odd feature alone (a slightly high level) is not a sick sensor.
    worst, deviation = (ranked[0][0], float(np.mean([z for _, z in ranked[:2]]))) if ranked else ("", 0.0)
    if not worst:
        basis = "none"
    rms_series = [(h.day, v) for h in own if (v := h.features.get("rms")) is not None]
    today_rms = day.features.get("rms")
    trend = None
    if today_rms is not None:
        series = [*rms_series, (day.day, today_rms)]
        trend = relative_trend([v for _, v in series], [float((d - day.day).days) for d, _ in series])
    if trend is not None:
        drift = min(abs(trend) * window_days * 10.0, Z_CAP)
        if drift > deviation:
            worst, deviation = "rms_trend", drift
    return SensorScore(day.sensor_id, day.asset_id, day.quantity, basis, deviation, worst or "-", trend)


def score_machines(
    today: list[SensorDay], history: list[SensorDay], *, min_history: int, window_days: int
) -> list[MachineScore]:
    """One score per machine of `today`, worst first."""
    # A machine is (site, asset id): asset ids are only unique within a site (two plants may each have a press-01).
    by_machine: dict[tuple[str, str], list[tuple[SensorDay, SensorScore]]] = defaultdict(list)
    for day in today:
        scored = score_sensor(day, today, history, min_history=min_history, window_days=window_days)
        by_machine[(day.site, day.asset_id)].append((day, scored))
    machines = []
    for (site, asset_id), pairs in by_machine.items():
        scores = [s for _, s in pairs]
        # A sensor with nothing to compare with (no history, no peers) is no evidence of health: averaged in as 0 it
        # would pull a deviating machine's score up. A machine with only such sensors scores 100, basis `none`.
        judged = [s.deviation for s in scores if s.basis != "none"]
        deviation = float(np.mean(judged)) if judged else 0.0
        worst = max(scores, key=lambda s: (s.deviation, s.sensor_id))
        trends = [s.rms_trend_per_day for s in scores if s.rms_trend_per_day is not None]
        bases = sorted({s.basis for s in scores})
        machines.append(
            MachineScore(
                asset_id=asset_id,
                site=site,
                machine_kind=pairs[0][0].machine_kind,
                score=round(100.0 * math.exp(-deviation / SCALE), 3),
                deviation=round(deviation, 6),
                basis="+".join(bases),
                worst=worst,
                rms_trend_per_day=max(trends, key=abs) if trends else None,
                sensors=len(scores),
            )
        )
    return sorted(machines, key=lambda m: (m.score, m.site, m.asset_id))
