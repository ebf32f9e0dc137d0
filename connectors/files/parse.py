"""Dropped files -> readings and bad rows (pure: no Kafka, no network).

CSV is parsed by the gateway's replay parser (`connectors.gateway.replay.read_csv`), so a
file drop and `vigil-gateway replay` accept exactly the same files. Parquet has the same
three columns; each of its rows is checked by the same rules.
"""

from __future__ import annotations

import csv
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.gateway.clock import to_us
from connectors.gateway.replay import HEADER, Readings, read_csv
from connectors.gateway.report import BadRow

Layout = Literal["csv", "parquet"]
SUFFIXES: Final[dict[str, Layout]] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
DUPLICATE: Final = "second reading of this sensor at the same time (times must strictly increase)"
MAX_US: Final = to_us(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
_NEWLINE: Final = re.compile(rb"\r\n|\r|\n")  # the line breaks csv counts with newline=""


class FileError(ValueError):
    """The whole file is unusable (not UTF-8, not Parquet, wrong columns, naive timestamps...)."""


@dataclass(frozen=True)
class BadRecord:
    row: BadRow  # file, line (CSV physical line / Parquet 1-based row), reason, text
    raw: bytes  # the row as it was in the file (CSV line bytes; Parquet row as JSON)


@dataclass(frozen=True)
class Parsed:
    layout: Layout
    readings: Readings
    bad: list[BadRecord]


def layout_of(name: str) -> Layout | None:
    """The layout a file name announces; None for names the pickup ignores (hidden, partial, other types)."""
    if name.startswith("."):
        return None
    return SUFFIXES.get(Path(name).suffix.lower())


def parse_file(path: Path, name: str | None = None) -> Parsed:
    """Readings of a dropped file; `name` (default: the file's name) is what bad rows report."""
    name = name or path.name
    layout = layout_of(name)
    if layout == "csv":
        return parse_csv(path, name)
    if layout == "parquet":
        return parse_parquet(path, name)
    raise FileError(f"{name}: not a .csv or .parquet file")


def parse_csv(path: Path, name: str) -> Parsed:
    try:
        readings = read_csv(path)
    except UnicodeDecodeError as exc:
        raise FileError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (csv.Error, OSError) as exc:
        raise FileError(f"{name}: unreadable CSV ({exc})") from exc
    if not readings.bad_rows:
        return Parsed("csv", readings, [])
    lines = _NEWLINE.split(path.read_bytes())
    bad = []
    for row in readings.bad_rows:
        row = row.model_copy(update={"file": name})
        bad.append(BadRecord(row, lines[row.line - 1] if 0 < row.line <= len(lines) else row.text.encode()))
    return Parsed("csv", Readings(readings.by_sensor, [b.row for b in bad]), bad)


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise FileError(f"missing column {name!r} (need {', '.join(HEADER)})")
    return table.column(name)


def _times(column: pa.ChunkedArray) -> list[int | None]:
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            raise FileError("timestamp column has no time zone (use timestamp[us, tz=UTC] or int64 epoch µs)")
        return column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_integer(kind):
        return column.cast(pa.int64()).to_pylist()  # type: ignore[no-any-return]
    raise FileError(f"timestamp column is {kind}, not int64 epoch microseconds or timestamp[us, tz=UTC]")


def _values(column: pa.ChunkedArray) -> list[float | None]:
    kind = column.type
    if not (pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind)):
        raise FileError(f"value column is {kind}, not float64")
    return column.cast(pa.float64()).to_pylist()  # type: ignore[no-any-return]


def _sensors(column: pa.ChunkedArray) -> list[str | None]:
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise FileError(f"sensor_id column is {column.type}, not string")
    return column.to_pylist()  # type: ignore[no-any-return]


def _check(t: int | None, sensor: str | None, value: float | None) -> tuple[int, uuid.UUID, float | None]:
    if t is None:
        raise ValueError("timestamp is null")
    if not 0 <= t <= MAX_US:
        raise ValueError(f"timestamp {t} is not epoch microseconds between 1970 and 9999")
    if sensor is None:
        raise ValueError("sensor_id is null")
    try:
        sensor_id = uuid.UUID(sensor.strip())
    except ValueError:
        raise ValueError(f"sensor_id {sensor!r} is not a UUID") from None
    if value is not None and math.isinf(value):
        raise ValueError(f"value {value!r} is not finite")
    return t, sensor_id, None if value is None or math.isnan(value) else value


def parse_parquet(path: Path, name: str) -> Parsed:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise FileError(f"{name}: not a readable Parquet file ({exc})") from exc
    try:
        times = _times(_column(table, "timestamp"))
        sensors = _sensors(_column(table, "sensor_id"))
        values = _values(_column(table, "value"))
    except FileError as exc:
        raise FileError(f"{name}: {exc}") from None
    by_sensor: dict[uuid.UUID, dict[int, float | None]] = {}
    bad: list[BadRecord] = []
    for index, (t, sensor, value) in enumerate(zip(times, sensors, values, strict=True), start=1):
        try:
            moment, sensor_id, reading = _check(t, sensor, value)
            seen = by_sensor.setdefault(sensor_id, {})
            if moment in seen:
                raise ValueError(DUPLICATE)
        except ValueError as exc:
            raw = _row_json(t, sensor, value)
            bad.append(BadRecord(BadRow(file=name, line=index, reason=str(exc), text=raw.decode()[:200]), raw))
            continue
        seen[moment] = reading
    readings = Readings({s: sorted(v.items()) for s, v in by_sensor.items()}, [b.row for b in bad])
    return Parsed("parquet", readings, bad)


def _row_json(t: int | None, sensor: str | None, value: float | None) -> bytes:
    row: dict[str, Any] = {"timestamp": t, "sensor_id": sensor, "value": value}
    if value is not None and not math.isfinite(value):
        row["value"] = str(value)  # JSON has no NaN/Infinity
    return json.dumps(row, separators=(",", ":")).encode()
