"""streams.quality: spikes flagged, clean signals kept, ranges, nulls, stuck runs and gaps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import QualityCode
from streams.quality import CODES, HampelTail, _neighbour_median, assess, quantiles

pytestmark = pytest.mark.unit

RATE = 1000.0


def _times(n: int, start_us: int = 1_700_000_000_000_000) -> np.ndarray:
    return start_us + np.arange(n, dtype=np.int64) * int(1e6 / RATE)


def _codes(v: np.ndarray, **kwargs: object) -> list[QualityCode]:
    result = assess(_times(v.size), v, range_min=-100.0, range_max=100.0, sampling_rate_hz=RATE, **kwargs)  # type: ignore[arg-type]
    return result.code_names()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    amplitude=st.floats(0.5, 20.0),
    freq=st.floats(1.0, 60.0),
    noise=st.floats(0.01, 0.1),
    spikes=st.integers(1, 10),
)
def test_flags_injected_spikes_and_keeps_clean_signal(
    seed: int, amplitude: float, freq: float, noise: float, spikes: int
) -> None:
    rng = np.random.default_rng(seed)
    n = 1000
    t = np.arange(n) / RATE
    clean = amplitude * np.sin(2 * np.pi * freq * t) + rng.normal(0, noise * amplitude, n)
    where = rng.choice(np.arange(10, n - 10), size=spikes, replace=False)
    signal = clean.copy()
    # A spike: a jump of 4-8x the signal's amplitude, against noise of at most 10 % of it.
    signal[where] += rng.choice([-1, 1], spikes) * amplitude * rng.uniform(4, 8, spikes)
    signal = np.clip(signal, -99, 99)
    codes = np.array(_codes(signal))
    flagged = set(np.flatnonzero(codes == QualityCode.SPIKE).tolist())
    assert set(where.tolist()) <= flagged
    # A clean sine with noise keeps (nearly) all its samples: a false spike rate under 1 %.
    clean_codes = np.array(_codes(np.clip(clean, -99, 99)))
    assert np.mean(clean_codes == QualityCode.SPIKE) < 0.01


def test_null_out_of_range_and_precedence() -> None:
    v = np.sin(np.linspace(0, 20, 200))
    v[5] = np.nan
    v[50] = 150.0  # beyond the range: out_of_range, not spike
    codes = _codes(v)
    assert codes[5] is QualityCode.NON_FINITE
    assert codes[50] is QualityCode.OUT_OF_RANGE
    assert codes.count(QualityCode.OK) == 198


def test_stuck_run_is_flagged() -> None:
    v = np.sin(np.linspace(0, 20, 300))
    v[100:180] = v[100]
    codes = _codes(v)
    assert codes[100:180] == [QualityCode.STUCK] * 80
    assert codes.count(QualityCode.STUCK) == 80


def test_flat_quantised_signal_is_not_a_spike_storm() -> None:
    v = np.round(20 + 0.01 * np.random.default_rng(1).normal(size=40), 1)
    assert QualityCode.SPIKE not in _codes(v)


def test_missing_samples_within_and_across_packages() -> None:
    t = _times(100)
    t = np.delete(t, np.arange(40, 50))  # a hole of 10 samples
    v = np.sin(np.arange(t.size) / 5)
    result = assess(t, v, range_min=-2, range_max=2, sampling_rate_hz=RATE)
    assert result.missing_samples == 10
    following = _times(10, start_us=int(t[-1]) + 6 * 1000)  # 5 samples missing between packages
    after = assess(following, np.zeros(10) + 0.5, range_min=-2, range_max=2, sampling_rate_hz=RATE, tail=result.tail)
    assert after.missing_samples == 5


def test_spike_at_package_start_is_judged_against_previous_package() -> None:
    first = np.sin(np.linspace(0, 6, 500))
    tail = assess(_times(500), first, range_min=-10, range_max=10, sampling_rate_hz=RATE).tail
    second = np.sin(np.linspace(6, 12, 500))
    second[0] += 5.0
    result = assess(
        _times(500, 1_700_000_000_500_000), second, range_min=-10, range_max=10, sampling_rate_hz=RATE, tail=tail
    )
    assert result.code_names()[0] is QualityCode.SPIKE
    assert isinstance(result.tail, HampelTail)
    assert len(result.tail.values) == 4


def test_counts_are_by_code_name() -> None:
    v = np.sin(np.linspace(0, 20, 100))
    v[3] = np.nan
    counts = assess(_times(100), v, range_min=-2, range_max=2, sampling_rate_hz=RATE).counts()
    assert counts == {"ok": 99, "non_finite": 1}
    assert set(counts) <= {c.value for c in CODES}


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(-1e12, 1e12), min_size=1, max_size=60),
    q=st.sampled_from([0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0]),
)
def test_quantiles_are_numpys_percentiles(values: list[float], q: float) -> None:
    a = np.asarray(values)
    assert quantiles(a, q) == [float(np.percentile(a, 100 * q))]


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6), min_size=12, max_size=60), k=st.integers(1, 4))
def test_the_neighbour_median_is_the_median_without_the_sample_itself(values: list[float], k: int) -> None:
    padded = np.asarray(values)
    n = padded.size - 2 * k
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * k + 1)
    expected = np.median(np.delete(windows, k, axis=1), axis=1)
    np.testing.assert_allclose(_neighbour_median(padded, k, n), expected, rtol=1e-12, atol=1e-9)
