"""The stages after validation and dedupe, composed as one pure function per package.

`process` takes a valid package, its sensor's metadata, where it came from, the
clock correction to apply and the sensor's carried-over state, and returns the
clean record, the alerts and the new state. The agents only move bytes and
state between Kafka, Faust tables and this function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from contracts import Alert, CleanReadingBatch, ClockSource, EdgePackage, QualityCode, SensorDescription
from streams.alerts import Observation, RuleSet, SensorAlertState, Subject, evaluate
from streams.clock import correct_times
from streams.enrich import profile, to_canonical
from streams.quality import CODES, HampelTail, QualitySettings, assess

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


@dataclass(frozen=True, slots=True)
class Processed:
    clean: CleanReadingBatch
    alerts: list[Alert]
    state: SensorState
    quality_counts: dict[str, int]


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
        clean = CleanReadingBatch(
            **base,
            t_raw_us=[],
            t_us=[],
            v=[],
            quality=[],
            missing_samples=0,
            features=package.features or {},
            claim_uri=package.claim.uri if package.claim else None,
        )
        return Processed(clean, [], state, {})

    t_raw = np.asarray(package.samples.t, dtype=np.int64)
    values = np.asarray([np.nan if x is None else x for x in package.samples.v], dtype=np.float64)
    values = to_canonical(values, meta.quantity, meta.source_unit)
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
    clean = CleanReadingBatch(
        **base,
        t_raw_us=t_raw[ok].tolist(),
        t_us=t_true[ok].tolist(),
        v=values[ok].tolist(),
        quality=[QualityCode.OK] * int(ok.sum()),
        dropped={code: n for code, n in counts.items() if code != QualityCode.OK.value},
        missing_samples=graded.missing_samples,
    )
    good = values[ok]
    observation = Observation(
        mean=float(good.mean()) if good.size else None,
        max=float(good.max()) if good.size else None,
        min=float(good.min()) if good.size else None,
        p95=float(np.percentile(good, 95)) if good.size else None,
        rms=float(np.sqrt(np.mean(good**2))) if good.size else None,
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
    return Processed(clean, alerts, SensorState(graded.tail, alert_state), counts)


def _us(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)
