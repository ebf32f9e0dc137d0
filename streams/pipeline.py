"""The stages after validation and dedupe, composed as one pure function per package.

`process` takes a valid package, its sensor's metadata, where it came from, the
clock correction to apply and the sensor's carried-over state, and returns the
clean record, the alerts and the new state. The agents only move bytes and
state between Kafka, Faust tables and this function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Final

import numpy as np

from contracts import (
    Alert,
    CleanReadingBatch,
    ClockSource,
    EdgePackage,
    FlaggedSamples,
    QualityCode,
    SensorDescription,
)
from contracts import avro as avro_codec
from streams.alerts import Observation, RuleSet, SensorAlertState, Subject, evaluate
from streams.clock import correct_times
from streams.enrich import profile, to_canonical
from streams.quality import CODES, HampelTail, QualitySettings, assess, quantiles

_OK = CODES.index(QualityCode.OK)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a package was read from (kept through parking, so provenance is the original)."""

    topic: str
    partition: int
    offset: int
    append_time: datetime


@dataclass(frozen=True, slots=True)
class SensorState:
    tail: HampelTail = field(default_factory=HampelTail)
    alerts: SensorAlertState = field(default_factory=SensorAlertState)


# Only `ok` samples travel in the clean stream, and `ok` is symbol 0 of the schema's QualityCode enum.
_OK_SYMBOL: Final = 0


def _quality_symbols(model: type[FlaggedSamples]) -> list[str]:
    quality = next(f for f in avro_codec.raw_schema(model)["fields"] if f["name"] == "quality")
    symbols: list[str] = quality["type"]["items"]["symbols"]
    return symbols


_FLAGGED_SYMBOLS: Final = _quality_symbols(FlaggedSamples)
# The Avro enum symbol of each grade code (`streams.quality.CODES` has its own order).
_SYMBOL_OF_CODE: Final = np.array([_FLAGGED_SYMBOLS.index(code.value) for code in CODES], dtype=np.int8)
# The fields a FlaggedSamples record shares with its package's clean record.
_FLAGGED_FIELDS: Final = tuple(
    name for name in FlaggedSamples.model_fields if name not in {"sample_index", "t_raw_us", "t_us", "v", "quality"}
)


@dataclass(frozen=True)
class Processed:
    """The clean record as its scalar fields plus numpy columns: encoding those directly skips building
    1000-element Python lists and per-item Avro writes (`encode_clean`). `clean` is the same record as the
    validated contract model, made on demand (tests, tools)."""

    clean_fields: dict[str, Any]
    clean_columns: dict[str, np.ndarray]
    alerts: list[Alert]
    state: SensorState
    quality_counts: dict[str, int]
    flagged_columns: dict[str, np.ndarray] | None = None  # the samples kept out, with their codes; None if none

    @cached_property
    def clean(self) -> CleanReadingBatch:
        columns: dict[str, Any] = {name: c.tolist() for name, c in self.clean_columns.items() if name != "quality"}
        return CleanReadingBatch(**self.clean_fields, **columns, quality=[QualityCode.OK] * len(columns["v"]))

    def encode_clean(self) -> bytes:
        """Schemaless Avro of `clean`, byte for byte what `avro.encode(self.clean)` gives."""
        return avro_codec.encode_columns(CleanReadingBatch, self.clean_fields, self.clean_columns)

    @cached_property
    def flagged(self) -> FlaggedSamples | None:
        """The flagged samples as the contract model, made on demand (tests, tools)."""
        datum = self._flagged_datum()
        return None if datum is None else FlaggedSamples.model_validate(datum)

    def encode_flagged(self) -> bytes | None:
        """Schemaless Avro of `flagged` (None when every sample was ok), as `avro.encode(self.flagged)` gives.

        A package flags a few samples: plain lists through fastavro take ~30 µs here, the columnar writer
        (made for 1000-sample arrays) ~130 µs.
        """
        datum = self._flagged_datum()
        return None if datum is None else avro_codec.encode_datum(FlaggedSamples, datum)

    def _flagged_datum(self) -> dict[str, Any] | None:
        """The FlaggedSamples record as plain values (quality codes as their Avro symbols), or None."""
        if self.flagged_columns is None:
            return None
        datum = {name: self.clean_fields[name] for name in _FLAGGED_FIELDS}
        datum.update((name, column.tolist()) for name, column in self.flagged_columns.items() if name != "quality")
        datum["quality"] = [_FLAGGED_SYMBOLS[i] for i in self.flagged_columns["quality"].tolist()]
        return datum


def process(
    package: EdgePackage,
    sensor: SensorDescription,
    source: Source,
    *,
    clock_offset_ms: float,
    clock_source: ClockSource,
    state: SensorState,
    rules: RuleSet,
    now: datetime,
    quality: QualitySettings = QualitySettings(),  # noqa: B008 - frozen
) -> Processed:
    """Clock, quality, enrich and alerts for one valid package whose sensor is known."""
    meta = profile(sensor)
    base = {
        "package_id": package.package_id,
        "gateway_id": package.gateway_id,
        "sensor_id": package.sensor_id,
        "asset_id": meta.asset_id,
        "site": meta.site,
        "location_on_machine": meta.location_on_machine,
        "quantity": meta.quantity,
        "unit": meta.unit,
        "clock_source": clock_source,
        "clock_offset_ms": clock_offset_ms,
        "source_topic": source.topic,
        "source_partition": source.partition,
        "source_offset": source.offset,
        "received_at": source.append_time,
        "processed_at": now,
    }
    shift_us = round(clock_offset_ms * 1000)
    window = (_us(package.window.start) + shift_us, _us(package.window.end) + shift_us)
    if package.samples is None:
        # Smart data and claim checks carry no samples to grade: they pass through, enriched and time-corrected.
        fields = {
            **base,
            "missing_samples": 0,
            "dropped": {},
            "features": package.features or {},
            "claim_uri": package.claim.uri if package.claim else None,
        }
        return Processed(fields, _columns(_NO_TIMES, _NO_TIMES, _NO_VALUES), [], state, {})

    arrays = package.samples.arrays()
    t_raw = arrays.t
    values = to_canonical(arrays.v, meta.quantity, meta.source_unit)
    t_true = correct_times(t_raw, clock_offset_ms)
    graded = assess(
        t_true,
        values,
        range_min=meta.range_min,
        range_max=meta.range_max,
        sampling_rate_hz=meta.sampling_rate_hz,
        tail=state.tail,
        settings=quality,
    )
    ok = graded.codes == _OK
    counts = graded.counts()
    fields = {
        **base,
        "dropped": {code: n for code, n in counts.items() if code != QualityCode.OK.value},
        "features": {},
        "claim_uri": None,
        "missing_samples": graded.missing_samples,
    }
    good = values[ok]
    columns = _columns(t_raw[ok], t_true[ok], good)
    flagged = None
    if good.size < values.size:  # outliers are flagged, not deleted: each travels on with its code
        bad = ~ok
        flagged = {
            "sample_index": np.flatnonzero(bad),
            "t_raw_us": t_raw[bad],
            "t_us": t_true[bad],
            "v": values[bad],
            "quality": _SYMBOL_OF_CODE[graded.codes[bad]],
        }
    observation = Observation(
        mean=float(good.mean()) if good.size else None,
        max=float(good.max()) if good.size else None,
        min=float(good.min()) if good.size else None,
        p95=quantiles(good, 0.95)[0] if good.size else None,
        rms=float(np.sqrt(np.dot(good, good) / good.size)) if good.size else None,
        bad_share=1.0 - good.size / max(values.size, 1),
        window_start_us=window[0],
        window_end_us=window[1],
        clock_offset_ms=clock_offset_ms,
    )
    limits = {
        "warning_high": meta.warning_high,
        "critical_high": meta.critical_high,
        "warning_low": meta.warning_low,
        "critical_low": meta.critical_low,
    }
    subject = Subject(meta.asset_id, meta.site, package.sensor_id, package.gateway_id)
    alerts, alert_state = evaluate(
        rules,
        observation,
        quantity=meta.quantity,
        unit=meta.unit,
        limits=limits,
        state=state.alerts,
        subject=subject,
        now=now,
    )
    return Processed(fields, columns, alerts, SensorState(graded.tail, alert_state), counts, flagged)


_NO_TIMES: Final = np.zeros(0, dtype=np.int64)
_NO_VALUES: Final = np.zeros(0, dtype=np.float64)


def _columns(t_raw_us: np.ndarray, t_us: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    quality = np.full(v.size, _OK_SYMBOL, dtype=np.int8)
    return {"t_raw_us": t_raw_us, "t_us": t_us, "v": v, "quality": quality}


def _us(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)
