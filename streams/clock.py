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

The window is divided into `DEFAULT_MAX_POINTS` time slots (~1.2 s each for 10
minutes) and keeps, per slot, the observation with the lowest gap: the lower
envelope is all the estimator uses, and however many packages a gateway sends,
the window spans its full duration (a cap on the number of observations made
it span only seconds at hundreds of packages per second).
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
    """The lowest-gap (append time ms, gap ms) observation per time slot of one gateway, as read-only arrays.

    Arrays, not tuples: the window is consulted with every package of the gateway, and converting up to
    `DEFAULT_MAX_POINTS` floats to and from Python objects each time was a hot spot of the worker.
    """

    append_ms: np.ndarray = field(default_factory=lambda: _EMPTY)
    gap_ms: np.ndarray = field(default_factory=lambda: _EMPTY)
    # The fitted line of this (immutable) window: (slope, intercept), or (0, percentile) for the fallback.
    _line: list[tuple[float, float]] = field(default_factory=list, repr=False)

    def observe(
        self,
        append_ms: float,
        gap_ms: float,
        *,
        window_ms: float = DEFAULT_WINDOW_MS,
        max_points: int = DEFAULT_MAX_POINTS,
    ) -> SkewWindow:
        """The window with this observation; `self` itself when it does not lower its slot's gap."""
        slot_ms = window_ms / max_points
        slot = np.floor(append_ms / slot_ms)
        times, gaps = self.append_ms, self.gap_ms
        if times.size and np.floor(times[-1] / slot_ms) == slot:  # the usual case: the newest slot again
            index = times.size - 1
        else:
            same = np.flatnonzero(np.floor(times / slot_ms) == slot)
            index = int(same[0]) if same.size else -1
        if index >= 0:
            if gap_ms >= gaps[index]:
                return self
            times, gaps = times.copy(), gaps.copy()
            times[index], gaps[index] = append_ms, gap_ms
            return SkewWindow(_frozen(times), _frozen(gaps))
        times, gaps = np.append(times, append_ms), np.append(gaps, gap_ms)
        keep = times >= times.max() - window_ms
        if not keep.all():
            times, gaps = times[keep], gaps[keep]
        if times.size > max_points:  # a slot boundary inside the window: one slot too many
            newest = np.sort(np.argsort(times, kind="stable")[-max_points:])
            times, gaps = times[newest], gaps[newest]
        return SkewWindow(_frozen(times), _frozen(gaps))

    def estimate(self, at_ms: float) -> float | None:
        """Estimated offset (ms) at broker time `at_ms`, or None without observations."""
        if not self.append_ms.size:
            return None
        if not self._line:
            self._line.append(self._fit())
        slope, intercept = self._line[0]
        return intercept + slope * at_ms

    def _fit(self) -> tuple[float, float]:
        order = np.argsort(self.append_ms, kind="stable")
        times, gaps = self.append_ms[order], self.gap_ms[order]
        first = _bucket_line(times, gaps)
        if first is None:
            return 0.0, float(np.percentile(gaps, PERCENTILE))
        # Again on the gaps less that line: within a bucket a drifting clock's lowest gaps sit at one end, so
        # the first pass pairs them with the bucket's median time and is biased by up to half a bucket's drift.
        # Detrended, each bucket's low percentile belongs to its median time.
        second = _bucket_line(times, gaps - first[0] * times)
        if second is None:
            return first
        return first[0] + second[0], second[1]


def _bucket_line(times: np.ndarray, gaps: np.ndarray) -> tuple[float, float] | None:
    """Theil-Sen line through each time bucket's (median time, low-percentile gap); None if too few points."""
    buckets = min(BUCKETS, times.size // 4)
    if buckets < 3 or times[-1] - times[0] <= 0:
        return None
    edges = np.linspace(times[0], times[-1], buckets + 1)
    index = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, buckets - 1)
    xs, ys = [], []
    for b in range(buckets):
        members = index == b
        if members.sum() >= 2:
            xs.append(float(np.median(times[members])))
            ys.append(float(np.percentile(gaps[members], PERCENTILE)))
    if len(xs) < 3:
        return None
    x, y = np.asarray(xs), np.asarray(ys)
    slope = _theil_sen_slope(x, y)
    return slope, float(np.median(y - slope * x))


def _theil_sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    valid = dx != 0
    return float(np.median((y[j] - y[i])[valid] / dx[valid])) if valid.any() else 0.0


def correct_times(t_raw_us: np.ndarray, offset_ms: float) -> np.ndarray:
    """Gateway sample times -> true times, both int64 microseconds."""
    return t_raw_us + np.int64(round(offset_ms * 1000.0))
