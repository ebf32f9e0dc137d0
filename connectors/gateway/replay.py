"""Replay a CSV of timestamped readings as edge packages.

CSV layout (UTF-8, comma-separated, one reading per row, an optional header row):

    timestamp,sensor_id,value
    2026-11-23T08:00:00.000+01:00,6f1c2a0e-4b7d-4e8a-9c51-2f3d8e9a0b11,20.5
    1795420800100000,6f1c2a0e-4b7d-4e8a-9c51-2f3d8e9a0b11,

- `timestamp`: ISO-8601 with a UTC offset (`Z` or `+hh:mm`; naive times are rejected as
  ambiguous), or an integer count of microseconds since the Unix epoch (UTC).
- `sensor_id`: the sensor's UUID (its metadata should already be on `edge.metadata.v1`,
  or be given with `--metadata`; packages of unknown sensors are parked by the stream).
- `value`: a number in the sensor's declared unit; empty, `null` or `NaN` is a failed
  reading (sent as null). Infinity is an error.

Blank lines and lines starting with `#` are ignored. Rows may come in any order: each
sensor's readings are sorted by time and cut into packages of N samples. A bad row
(wrong column count, bad time, bad UUID, bad number, or a second reading of a sensor at
the same instant) is reported with its file, line and reason and skipped; it never stops
the replay. Package ids are derived from the sensor and the package's first time, so
replaying a file twice produces duplicates the stream drops, not double data.
"""

from __future__ import annotations

import csv
import json
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from connectors.gateway.clock import to_datetime, to_us
from connectors.gateway.report import BadRow
from connectors.gateway.simulate import Outgoing, wall_clock_us
from contracts import MAX_SAMPLES, EdgePackage, Samples, SensorDescription, Window

HEADER: Final = ("timestamp", "sensor_id", "value")
NULLS: Final = frozenset({"", "null", "nan", "none"})
# Namespace of replayed package ids (uuid5 over sensor id and first sample time).
REPLAY_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://w3id.org/vigil/replay")


@dataclass(frozen=True)
class Readings:
    """Per sensor, readings sorted by time: (µs since epoch, value or None)."""

    by_sensor: dict[uuid.UUID, list[tuple[int, float | None]]]
    bad_rows: list[BadRow]

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.by_sensor.values())


class RowError(ValueError):
    pass


def parse_time(text: str) -> int:
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"timestamp {text!r} is neither ISO-8601 nor epoch microseconds") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RowError(f"timestamp {text!r} has no UTC offset (add 'Z' or '+hh:mm')")
    return to_us(moment)


def parse_value(text: str) -> float | None:
    text = text.strip()
    if text.lower() in NULLS:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RowError(f"value {text!r} is not a number") from None
    if not math.isfinite(value):
        raise RowError(f"value {text!r} is not finite")
    return value


def parse_row(row: list[str]) -> tuple[int, uuid.UUID, float | None]:
    if len(row) != len(HEADER):
        raise RowError(f"expected {len(HEADER)} columns (timestamp,sensor_id,value), got {len(row)}")
    try:
        sensor = uuid.UUID(row[1].strip())
    except ValueError:
        raise RowError(f"sensor_id {row[1]!r} is not a UUID") from None
    return parse_time(row[0]), sensor, parse_value(row[2])


def read_csv(path: Path) -> Readings:
    by_sensor: dict[uuid.UUID, dict[int, float | None]] = {}
    bad: list[BadRow] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        for row in reader:
            line = reader.line_num  # physical line, right even after a quoted multi-line field
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if line == 1 and tuple(c.strip().lower() for c in row) == HEADER:
                continue
            try:
                t, sensor, value = parse_row(row)
            except RowError as exc:
                bad.append(BadRow(file=str(path), line=line, reason=str(exc), text=",".join(row)[:200]))
                continue
            seen = by_sensor.setdefault(sensor, {})
            if t in seen:
                reason = "second reading of this sensor at the same time (times must strictly increase)"
                bad.append(BadRow(file=str(path), line=line, reason=reason, text=",".join(row)[:200]))
                continue
            seen[t] = value
    return Readings({s: sorted(v.items()) for s, v in by_sensor.items()}, bad)


def load_descriptions(path: Path) -> list[SensorDescription]:
    """Sensor descriptions to register before a replay: a JSON array, or one JSON object per line."""
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return [SensorDescription.model_validate(item) for item in json.loads(text)]
    return [SensorDescription.from_wire(line) for line in text.splitlines() if line.strip()]


def packages(
    readings: Readings,
    samples_per_package: int,
    gateway_id: str,
    clock_offset_ms: float | None = 0.0,
    now_us: Callable[[], int] = wall_clock_us,
) -> Iterator[Outgoing]:
    """Valid packages, sensor by sensor in time order; each window spans exactly its samples."""
    if not 1 <= samples_per_package <= MAX_SAMPLES:
        raise ValueError(f"samples_per_package must be 1..{MAX_SAMPLES}")
    for sensor, rows in readings.by_sensor.items():
        for i in range(0, len(rows), samples_per_package):
            chunk = rows[i : i + samples_per_package]
            t = [r[0] for r in chunk]
            package = EdgePackage(
                package_id=uuid.uuid5(REPLAY_NAMESPACE, f"{sensor}/{t[0]}/{len(t)}"),
                gateway_id=gateway_id,
                sensor_id=sensor,
                sent_at=to_datetime(max(now_us(), t[-1])),
                clock_offset_ms=clock_offset_ms,
                window=Window(start=to_datetime(t[0]), end=to_datetime(t[-1])),
                samples=Samples(t=t, v=[r[1] for r in chunk]),
            )
            yield Outgoing(
                "valid",
                str(sensor).encode(),
                package.to_wire(),
                gateway_id,
                "unknown",
                package.package_id,
                "samples",
                samples=len(t),
            )
