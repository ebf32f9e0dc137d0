"""Stage 3, clock: correct sample times for the gateway's clock error (IC-1).

Convention (as NTP and the edge-package contract): `offset` is what to add to a
gateway time to get true time, in milliseconds.

Estimator, for gateways that report no NTP offset: each package gives one
observation `gap = broker_append_time - sent_at = offset + delay`, where the
network/queueing `delay` is never negative. The offset is therefore the lower
envelope of the gaps. Over a sliding window of recent observations we split
time into buckets, take a low percentile of each bucket's gaps (robust to the
odd packet that looks early because of broker clock jitter), and fit a
straight line through those points (Theil-Sen: median of pairwise slopes), so
a drifting clock is tracked rather than lagged. Arrival order does not matter:
observations are sorted by append time before fitting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

DEFAULT_WINDOW_MS: Final = 10 * 60 * 1000
DEFAULT_MAX_POINTS: Final = 512
BUCKETS: Final = 8
PERCENTILE: Final = 5.0


def _frozen(values: np.ndarray) -> np.ndarray:
    values.setflags(write=False)
    return values


_EMPTY: Final = _frozen(np.zeros(0, dtype=np.float64))


@dataclass(frozen=True, slots=True, eq=False)
class SkewWindow:
    """Recent (append time ms, gap ms) observations of one gateway, as read-only float64 arrays.

    Arrays, not tuples: the window is updated with every package of the gateway, and converting up to
    `DEFAULT_MAX_POINTS` floats to and from Python objects each time was a hot spot of the worker.
    """

    append_ms: np.ndarray = field(default_factory=lambda: _EMPTY)
    gap_ms: np.ndarray = field(default_factory=lambda: _EMPTY)

    def observe(
        self,
        append_ms: float,
        gap_ms: float,
        *,
        window_ms: float = DEFAULT_WINDOW_MS,
        max_points: int = DEFAULT_MAX_POINTS,
    ) -> SkewWindow:
        """A new window with one more observation; old and excess points fall out."""
        times = np.append(self.append_ms, append_ms)
        gaps = np.append(self.gap_ms, gap_ms)
        keep = times >= times.max() - window_ms
        if not keep.all():
            times, gaps = times[keep], gaps[keep]
        if times.size > max_points:
            if np.all(times[1:] >= times[:-1]):  # the usual case: observations arrive in append-time order
                times, gaps = times[-max_points:], gaps[-max_points:]
            else:
                newest = np.argsort(times, kind="stable")[-max_points:]
                times, gaps = times[newest], gaps[newest]
        return SkewWindow(_frozen(times), _frozen(gaps))

    def estimate(self, at_ms: float) -> float | None:
        """Estimated offset (ms) at broker time `at_ms`, or None without observations."""
        if not self.append_ms.size:
            return None
        order = np.argsort(self.append_ms, kind="stable")
        times, gaps = self.append_ms[order], self.gap_ms[order]
        buckets = min(BUCKETS, times.size // 4)
        if buckets < 3 or times[-1] - times[0] <= 0:
            return float(np.percentile(gaps, PERCENTILE))
        edges = np.linspace(times[0], times[-1], buckets + 1)
        index = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, buckets - 1)
        xs, ys = [], []
        for b in range(buckets):
            members = index == b
            if members.sum() >= 2:
                xs.append(float(np.median(times[members])))
                ys.append(float(np.percentile(gaps[members], PERCENTILE)))
        if len(xs) < 3:
            return float(np.percentile(gaps, PERCENTILE))
        slope = _theil_sen_slope(np.asarray(xs), np.asarray(ys))
        intercept = float(np.median(np.asarray(ys) - slope * np.asarray(xs)))
        return intercept + slope * at_ms


def _theil_sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    valid = dx != 0
    return float(np.median((y[j] - y[i])[valid] / dx[valid])) if valid.any() else 0.0


def correct_times(t_raw_us: np.ndarray, offset_ms: float) -> np.ndarray:
    """Gateway sample times -> true times, both int64 microseconds."""
    return t_raw_us + np.int64(round(offset_ms * 1000.0))
