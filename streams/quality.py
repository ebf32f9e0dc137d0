"""Stage 4, quality: one quality code per sample, vectorised over the whole package (IC-2, IC-3).

Codes, first match wins: non_finite (a null reading), out_of_range (outside the
sensor's physical range), stuck (a run of identical values at least
`stuck_min_run` long), spike (Hampel filter: further than `n_sigmas` robust
standard deviations from the median of its neighbours). Gaps are not a per-sample code: they are
counted as samples missing against the declared sampling rate.

The Hampel window reaches back into the previous package of the same sensor
(`HampelTail`, kept per sensor in a Faust table), so a spike in a package's
first samples is judged against real neighbours, not a truncated window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from contracts import QualityCode

_MAD_TO_SIGMA: Final = 1.4826

CODES: Final = (QualityCode.OK, QualityCode.NON_FINITE, QualityCode.OUT_OF_RANGE, QualityCode.SPIKE, QualityCode.STUCK)
_INDEX: Final = {code: i for i, code in enumerate(CODES)}


@dataclass(frozen=True, slots=True)
class QualitySettings:
    # Short on purpose: a median over 5 samples still removes up to two adjacent spikes, and follows
    # oscillations down to ~15 samples per period (a wider window flags every peak of a fast sine).
    half_window: int = 2
    n_sigmas: float = 6.0
    # A floor on the robust sigma, relative to the signal's scale: a quantised, nearly flat signal has MAD 0,
    # and every tiny step would otherwise be a "spike".
    min_sigma_ratio: float = 1e-3
    min_iqr_ratio: float = 0.01
    stuck_min_run: int = 50
    gap_factor: float = 1.5
    # A silence longer than this between two packages is a stopped stream (gateway off, line idle), reported by
    # its absence of packages, not as millions of missing samples.
    max_gap_us: int = 60_000_000


@dataclass(frozen=True, slots=True)
class HampelTail:
    """The last samples of a sensor's previous package: values and last time (µs)."""

    values: tuple[float, ...] = ()
    last_t_us: int | None = None


@dataclass(frozen=True, slots=True)
class QualityResult:
    codes: np.ndarray  # int8 index into CODES per sample
    missing_samples: int
    tail: HampelTail

    def code_names(self) -> list[QualityCode]:
        return [CODES[i] for i in self.codes.tolist()]

    def counts(self) -> dict[str, int]:
        bins = np.bincount(self.codes, minlength=len(CODES))
        return {CODES[i].value: int(n) for i, n in enumerate(bins) if n}


def assess(
    t_us: np.ndarray,
    v: np.ndarray,
    *,
    range_min: float,
    range_max: float,
    sampling_rate_hz: float,
    tail: HampelTail = HampelTail(),
    settings: QualitySettings = QualitySettings(),
) -> QualityResult:
    """Quality codes for samples `v` (float64, NaN = null) at times `t_us` (int64, increasing)."""
    codes = np.zeros(v.size, dtype=np.int8)
    finite = np.isfinite(v)
    codes[~finite] = _INDEX[QualityCode.NON_FINITE]
    outside = finite & ((v < range_min) | (v > range_max))
    codes[outside] = _INDEX[QualityCode.OUT_OF_RANGE]
    stuck = _stuck(v, settings.stuck_min_run) & (codes == 0)
    codes[stuck] = _INDEX[QualityCode.STUCK]
    # Out-of-range values are already judged: kept out of their neighbours' medians like nulls.
    judged = np.where(outside, np.nan, v)
    spikes = _hampel(judged, np.asarray(tail.values, dtype=np.float64), settings) & (codes == 0)
    codes[spikes] = _INDEX[QualityCode.SPIKE]
    previous = tail.last_t_us
    if previous is not None and t_us.size and not 0 < t_us[0] - previous <= settings.max_gap_us:
        previous = None  # out of order, or after a long silence: count only the gaps inside this package
    missing = _missing(t_us, previous, sampling_rate_hz, settings.gap_factor)
    usable = v[codes == 0]
    history = np.concatenate([np.asarray(tail.values, dtype=np.float64), usable])[-settings.half_window * 2 :]
    last = int(t_us[-1]) if t_us.size else None
    if last is None or (tail.last_t_us is not None and last < tail.last_t_us):
        last = tail.last_t_us  # a late package does not move the sensor's clock back
    new_tail = HampelTail(values=tuple(history.tolist()), last_t_us=last)
    return QualityResult(codes=codes, missing_samples=missing, tail=new_tail)


def _hampel(v: np.ndarray, history: np.ndarray, s: QualitySettings) -> np.ndarray:
    """Hampel filter with one robust scale per package.

    Each sample's deviation from the rolling median of its neighbours is compared with a scale
    taken from the whole package's deviations (1.4826 x their median absolute
    value). A per-window MAD over so few samples is itself noisy: on clean
    noise it flags about 1 % of samples, and inside a fast sine it swells with
    the slope and hides real spikes.
    """
    k = s.half_window
    finite = np.isfinite(v)
    if v.size <= k or not finite.any():
        return np.zeros(v.size, dtype=bool)
    # Pad: the previous package's tail on the left when there is one; otherwise, and always on the right, the
    # package's own edge point-reflected (2*edge - inner), which continues a slope instead of bending it.
    right = 2 * v[-1] - v[-2 : -k - 2 : -1]
    left = history[-k:] if history.size >= k else 2 * v[0] - v[k:0:-1]
    padded = np.concatenate([left, v, right])
    known = np.isfinite(padded)
    if not known.all():
        # Null readings are interpolated for the medians only, so a hole does not skew its neighbours' windows.
        index = np.arange(padded.size)
        padded = np.where(known, padded, np.interp(index, index[known], padded[known]))
    median = _neighbour_median(padded, k, v.size)
    deviation = np.abs(v - median)
    spread = quantiles(deviation[finite], 0.5)[0]
    scale = quantiles(np.abs(v[finite]), 0.5)[0]
    q75, q25 = quantiles(v[finite], 0.75, 0.25)
    # Floors: a noise-free signal has almost no deviation, and its smooth peaks must not become spikes.
    sigma = max(_MAD_TO_SIGMA * spread, s.min_iqr_ratio * (q75 - q25), s.min_sigma_ratio * max(scale, 1e-9))
    with np.errstate(invalid="ignore"):
        flagged: np.ndarray = np.asarray(deviation > s.n_sigmas * sigma) & finite
    return flagged


def _neighbour_median(padded: np.ndarray, k: int, n: int) -> np.ndarray:
    """Leave-one-out rolling median: for each of the n samples, the median of the k neighbours on each side.

    With the sample itself in a 5-wide window it is its own median most of the time, and the
    deviations' median collapses to 0. For k = 2 (the default) the median of four values is
    (sum - max - min) / 2, computed on shifted views without building the windows.
    """
    shifted = [padded[i : i + n] for i in range(2 * k + 1) if i != k]
    if k == 2:
        a, b, c, d = shifted
        high = np.maximum(np.maximum(a, b), np.maximum(c, d))
        low = np.minimum(np.minimum(a, b), np.minimum(c, d))
        result: np.ndarray = (a + b + c + d - high - low) / 2
        return result
    return np.asarray(np.median(np.stack(shifted, axis=1), axis=1))


def quantiles(values: np.ndarray, *qs: float) -> list[float]:
    """`np.percentile(values, 100 * q)` for each q (linear interpolation), with one partition and none of
    np.percentile's per-call overhead, which dominated this stage's profile. `values` must be non-empty."""
    n = values.size
    positions = [q * (n - 1) for q in qs]
    kth = sorted({int(np.floor(p)) for p in positions} | {int(np.ceil(p)) for p in positions})
    ordered = np.partition(values, kth)
    out = []
    for p in positions:
        lo, hi = int(np.floor(p)), int(np.ceil(p))
        low, high, t = float(ordered[lo]), float(ordered[hi]), p - lo
        # numpy's lerp: from the nearer end, so q = 1 gives the maximum exactly.
        out.append(high - (high - low) * (1 - t) if t >= 0.5 else low + (high - low) * t)
    return out


def _stuck(v: np.ndarray, min_run: int) -> np.ndarray:
    if v.size < min_run:
        return np.zeros(v.size, dtype=bool)
    change = np.concatenate([[True], v[1:] != v[:-1]])
    run_id = np.cumsum(change)
    run_length = np.bincount(run_id)[run_id]
    stuck: np.ndarray = np.asarray(run_length >= min_run) & np.isfinite(v)
    return stuck


def _missing(t_us: np.ndarray, previous_last_us: int | None, rate_hz: float, factor: float) -> int:
    if t_us.size == 0:
        return 0
    period_us = 1e6 / rate_hz
    times = t_us if previous_last_us is None else np.concatenate([[previous_last_us], t_us])
    steps = np.diff(times).astype(np.float64)
    late = steps > factor * period_us
    return int(np.sum(np.rint(steps[late] / period_us) - 1))
