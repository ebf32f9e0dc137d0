"""Fault injectors: damage inside valid packages, and whole packages the stream must reject.

Sample faults (`inject`) keep the package valid: spikes, null readings, stuck runs and
gaps (dropped samples, leaving a hole in time). Bad packages (`make_bad`) start from a
valid package's wire document and break it in exactly one way, named by the
`contracts.ReasonCode` the stream stage must give it. Duplicates are re-sends of an
earlier valid package and are produced by the emitter, which keeps the history.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.gateway.clock import iso_us, parse_us
from contracts import ReasonCode

# Future packages sit this far ahead of their send time: far beyond any real clock error.
FUTURE_SHIFT_US: Final = 6 * 3600 * 1_000_000
UNKNOWN_CONTEXT: Final = "https://w3id.org/vigil/contexts/v0.jsonld"
STUCK_MIN: Final = 5

BAD_KINDS: Final = (
    ReasonCode.MALFORMED_JSON,
    ReasonCode.UNKNOWN_CONTEXT,
    ReasonCode.SCHEMA_VIOLATION,
    ReasonCode.NON_FINITE_VALUE,
    ReasonCode.LENGTH_MISMATCH,
    ReasonCode.TIME_NOT_MONOTONIC,
    ReasonCode.FUTURE_TIMESTAMP,
)


class FaultRates(BaseModel):
    """Probabilities; 'per sample' rates apply to each sample, 'per package' ones to each valid package."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outlier_rate: float = Field(default=0.001, ge=0, le=1, description="per sample: a spike")
    null_rate: float = Field(default=0.0005, ge=0, le=1, description="per sample: a failed reading (null)")
    gap_rate: float = Field(default=0.02, ge=0, le=1, description="per package: a run of samples dropped")
    stuck_rate: float = Field(default=0.01, ge=0, le=1, description="per package: a run frozen at one value")
    bad_rate: float = Field(default=0.01, ge=0, le=1, description="per package: an extra, rejected package")
    duplicate_rate: float = Field(default=0.01, ge=0, le=1, description="per package: re-send an earlier package")
    features_rate: float = Field(default=0.0, ge=0, le=1, description="per vibration package: edge features instead")
    bad_kinds: tuple[ReasonCode, ...] = Field(default=BAD_KINDS, min_length=1)

    @field_validator("bad_kinds")
    @classmethod
    def _injectable(cls, kinds: tuple[ReasonCode, ...]) -> tuple[ReasonCode, ...]:
        unknown = [k.value for k in kinds if k not in BAD_KINDS]
        if unknown:
            raise ValueError(f"cannot inject {unknown}; injectable: {[k.value for k in BAD_KINDS]}")
        return kinds


@dataclass
class Injected:
    """What `inject` did to the samples that are actually sent (dropped samples are not counted twice)."""

    outliers: int = 0
    nulls: int = 0
    stuck_runs: int = 0
    stuck_samples: int = 0
    gaps: int = 0
    gap_samples: int = 0

    def add(self, other: Injected) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _run(rng: np.random.Generator, n: int, longest: int) -> tuple[int, int]:
    length = int(rng.integers(1, max(1, longest) + 1))
    begin = int(rng.integers(0, n - length + 1))
    return begin, begin + length


def _outside(indices: NDArray[np.int64], run: tuple[int, int] | None) -> NDArray[np.int64]:
    return indices if run is None else indices[(indices < run[0]) | (indices >= run[1])]


def _overlap(a: tuple[int, int], b: tuple[int, int] | None) -> int:
    return 0 if b is None else max(0, min(a[1], b[1]) - max(a[0], b[0]))


def inject(
    values: NDArray[np.float64], spike: float, rates: FaultRates, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.bool_] | None, Injected]:
    """Damage a window: returns values (NaN = null reading), the mask of samples kept (None = all), the tally.

    Works on index runs rather than per-sample masks and draws counts before positions:
    most windows get no fault at all, and this keeps them nearly free.
    """
    n = values.size
    v = values.copy()
    done = Injected()
    stuck: tuple[int, int] | None = None
    if n >= 3 and rng.random() < rates.stuck_rate:
        # A frozen sensor stays frozen a while: at least STUCK_MIN readings where the window allows,
        # so a detector needing a few equal values in a row can see it even in a 10-sample package.
        shortest = min(n - 1, max(STUCK_MIN, n // 10))
        length = int(rng.integers(shortest, max(shortest, n // 3) + 1))
        a = int(rng.integers(0, n - length + 1))
        stuck = (a, a + length)
        v[a : a + length] = v[a]
    spikes = _outside(np.unique(rng.integers(0, n, size=rng.binomial(n, rates.outlier_rate))), stuck)
    if spikes.size:
        v[spikes] += rng.choice([-1.0, 1.0], size=spikes.size) * rng.uniform(0.6, 1.2, size=spikes.size) * spike
    nulls = _outside(np.unique(rng.integers(0, n, size=rng.binomial(n, rates.null_rate))), stuck)
    v[nulls] = np.nan
    gap: tuple[int, int] | None = None
    keep: NDArray[np.bool_] | None = None
    if n >= 3 and rng.random() < rates.gap_rate:
        a, b = _run(rng, n - 2, max(1, n // 10))
        gap = (a + 1, b + 1)  # always leave samples on both sides of the hole
        keep = np.ones(n, dtype=bool)
        keep[gap[0] : gap[1]] = False
        done.gaps, done.gap_samples = 1, b - a
    done.outliers = _outside(np.setdiff1d(spikes, nulls, assume_unique=True), gap).size
    done.nulls = _outside(nulls, gap).size
    if stuck is not None:
        kept = stuck[1] - stuck[0] - _overlap(stuck, gap)
        if kept >= 2:  # else the gap swallowed the run
            done.stuck_runs, done.stuck_samples = 1, kept
    return v, keep, done


def _schema_violation(doc: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    variant = int(rng.integers(0, 3))
    if variant == 0:
        doc.pop("window")  # missing required field
    elif variant == 1:
        doc["unit"] = "degC"  # unknown field: units belong in the metadata
    else:
        doc["gateway_id"] = "gw plant/a"  # violates the gateway id pattern
    return doc


def make_bad(wire: bytes, reason: ReasonCode, sent_true_us: int, rng: np.random.Generator) -> bytes:
    """Break a valid samples package (its wire bytes) in the way `reason` names; gives it a fresh id."""
    doc: dict[str, Any] = json.loads(wire)
    doc["package_id"] = str(uuid.uuid5(uuid.UUID(doc["package_id"]), f"bad/{reason}"))
    samples = doc["samples"]
    n = len(samples["t"])
    if reason is ReasonCode.MALFORMED_JSON:
        text = json.dumps(doc, separators=(",", ":")).encode()
        return text[: max(1, int(len(text) * rng.uniform(0.2, 0.9)))]  # cut mid-transfer
    if reason is ReasonCode.UNKNOWN_CONTEXT:
        doc["@context"] = UNKNOWN_CONTEXT
    elif reason is ReasonCode.SCHEMA_VIOLATION:
        doc = _schema_violation(doc, rng)
    elif reason is ReasonCode.NON_FINITE_VALUE:
        samples["v"][int(rng.integers(0, n))] = float(rng.choice([np.nan, np.inf]))
    elif reason is ReasonCode.LENGTH_MISMATCH:
        samples["v"] = samples["v"][:-1] if n > 1 else [*samples["v"], samples["v"][0]]
    elif reason is ReasonCode.TIME_NOT_MONOTONIC:
        if n > 1:
            i = int(rng.integers(0, n - 1))
            samples["t"][i], samples["t"][i + 1] = samples["t"][i + 1], samples["t"][i]
        else:
            samples["t"], samples["v"] = samples["t"] * 2, samples["v"] * 2  # a repeated time is not increasing
    elif reason is ReasonCode.FUTURE_TIMESTAMP:
        doc = _shift(doc, sent_true_us + FUTURE_SHIFT_US - samples["t"][0])
    else:
        raise ValueError(f"no injector for {reason}")
    # allow_nan: the non-finite case must carry a literal NaN/Infinity token, as a careless gateway would.
    return json.dumps(doc, separators=(",", ":"), allow_nan=True).encode()


def _shift(doc: dict[str, Any], shift_us: int) -> dict[str, Any]:
    """Move every time in a package by `shift_us` (a valid package, only in the wrong place in time)."""
    doc["samples"]["t"] = [t + shift_us for t in doc["samples"]["t"]]
    doc["window"] = {k: iso_us(parse_us(doc["window"][k]) + shift_us) for k in ("start", "end")}
    doc["sent_at"] = iso_us(parse_us(doc["sent_at"]) + shift_us)
    return doc


def features(values: NDArray[np.float64]) -> dict[str, float] | None:
    """Smart data a gateway computes at the edge from a vibration window (None if nothing was read)."""
    x = values[~np.isnan(values)]
    if x.size == 0:
        return None
    mean, std = float(x.mean()), float(x.std())
    rms = float(np.sqrt(np.mean(x * x)))
    peak = float(np.max(np.abs(x)))
    kurtosis = float(np.mean((x - mean) ** 4) / std**4) if std > 0 else 0.0
    out = {"mean": mean, "std": std, "rms": rms, "peak": peak, "crest_factor": peak / rms if rms > 0 else 0.0}
    out["kurtosis"] = kurtosis
    return {k: round(v, 5) for k, v in out.items()}
