"""Dropped files -> readings and bad rows (pure: no Kafka, no network).

CSV is parsed by the gateway's replay parser (`connectors.gateway.replay.read_csv_lines`),
so a file drop and `vigil-gateway replay` accept exactly the same files. Parquet has the
same three columns; each of its rows is checked by the same rules (the same time range too).
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.gateway.replay import HEADER, Readings, check_us, read_csv_lines, shown
from connectors.gateway.report import BadRow

Layout = Literal["csv", "parquet"]
SUFFIXES: Final[dict[str, Layout]] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
DUPLICATE: Final = "second reading of this sensor at the same time (times must strictly increase)"
# Microseconds per tick of the coarser Arrow timestamp units (us is taken as is, ns divided: see _micros).
_PER_US: Final = {"s": 1_000_000, "ms": 1000}


class FileError(ValueError):
    """The whole file is unusable (not UTF-8, not Parquet, wrong columns, naive timestamps...)."""


@dataclass(frozen=True)
class BadRecord:
    row: BadRow  # file, line (CSV first physical line / Parquet 1-based row), reason, text
    raw: bytes  # the row as it was in the file (CSV record bytes, every line of it; Parquet row as JSON)
    last_line: int = 0  # CSV: the record's last physical line, past `row.line` if a quoted field held breaks


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
        readings, spans = read_csv_lines(path)
    except UnicodeDecodeError as exc:
        raise FileError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (csv.Error, OSError) as exc:
        raise FileError(f"{name}: unreadable CSV ({exc})") from exc
    if not readings.bad_rows:
        return Parsed("csv", readings, [])
    data = path.read_bytes()
    # bytes.splitlines breaks at \r\n, \r and \n: the physical lines csv counts with newline="".
    lines = data.removeprefix(codecs.BOM_UTF8).splitlines(keepends=True)
    bad = []
    for row, span in zip(readings.bad_rows, spans, strict=True):
        row = row.model_copy(update={"file": name})
        # The whole record, inner line breaks included (they belong to a quoted field); not its final break.
        raw = b"".join(lines[span.start - 1 : span.stop - 1]).removesuffix(b"\n").removesuffix(b"\r")
        bad.append(BadRecord(row, raw, span.stop - 1))
    return Parsed("csv", Readings(readings.by_sensor, [b.row for b in bad]), bad)


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise FileError(f"missing column {name!r} (need {', '.join(HEADER)})")
    return table.column(name)


def _times(column: pa.ChunkedArray) -> tuple[list[int | None], str]:
    """The stored integers and their unit. Converted row by row (`_micros`), not by an Arrow cast: a cast fails
    the whole column on one value out of range (or one ns time that is not a whole µs)."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            raise FileError("timestamp column has no time zone (use timestamp[us, tz=UTC] or int64 epoch µs)")
        return column.cast(pa.int64()).to_pylist(), kind.unit  # epoch-based in UTC whatever the tz: same width
    if pa.types.is_integer(kind):
        return column.to_pylist(), "us"  # Python ints: uint64 beyond int64 is a bad row, not a failed cast
    raise FileError(f"timestamp column is {kind}, not int64 epoch microseconds or timestamp[us, tz=UTC]")


def _values(column: pa.ChunkedArray) -> list[float | None]:
    kind = column.type
    if pa.types.is_integer(kind):
        # float() per value, like a CSV cell: Arrow's safe cast refuses integers beyond 2**53 for the whole column.
        return [None if v is None else float(v) for v in column.to_pylist()]
    if not (pa.types.is_floating(kind) or pa.types.is_null(kind)):
        raise FileError(f"value column is {kind}, not float64")
    return column.cast(pa.float64()).to_pylist()  # type: ignore[no-any-return]


def _sensors(column: pa.ChunkedArray) -> list[str | None]:
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise FileError(f"sensor_id column is {column.type}, not string")
    return column.to_pylist()  # type: ignore[no-any-return]


def _micros(t: int, unit: str) -> int:
    if unit == "ns":
        if t % 1000:
            raise ValueError(f"timestamp {t} ns is not a whole microsecond (times are kept in µs)")
        return check_us(t // 1000, f"{t} ns", given_in_us=False)
    if unit == "us":
        return check_us(t, str(t))
    return check_us(t * _PER_US[unit], f"{t} {unit}", given_in_us=False)


def _check(t: int | None, unit: str, sensor: str | None, value: float | None) -> tuple[int, uuid.UUID, float | None]:
    if t is None:
        raise ValueError("timestamp is null")
    moment = _micros(t, unit)  # its RowError is a ValueError too
    if sensor is None:
        raise ValueError("sensor_id is null")
    try:
        sensor_id = uuid.UUID(sensor.strip())
    except ValueError:
        raise ValueError(f"sensor_id {shown(sensor)} is not a UUID") from None
    if value is not None and math.isinf(value):
        raise ValueError(f"value {value!r} is not finite")
    return moment, sensor_id, None if value is None or math.isnan(value) else value


def parse_parquet(path: Path, name: str) -> Parsed:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise FileError(f"{name}: not a readable Parquet file ({exc})") from exc
    try:
        times, unit = _times(_column(table, "timestamp"))
        sensors = _sensors(_column(table, "sensor_id"))
        values = _values(_column(table, "value"))
    except FileError as exc:
        raise FileError(f"{name}: {exc}") from None
    by_sensor: dict[uuid.UUID, dict[int, float | None]] = {}
    bad: list[BadRecord] = []
    for index, (t, sensor, value) in enumerate(zip(times, sensors, values, strict=True), start=1):
        try:
            moment, sensor_id, reading = _check(t, unit, sensor, value)
            seen = by_sensor.setdefault(sensor_id, {})
            if moment in seen:
                raise ValueError(DUPLICATE)
        except ValueError as exc:
            raw = _row_json(t, unit, sensor, value)
            bad.append(BadRecord(BadRow(file=name, line=index, reason=str(exc), text=raw.decode()[:200]), raw))
            continue
        seen[moment] = reading
    readings = Readings({s: sorted(v.items()) for s, v in by_sensor.items()}, [b.row for b in bad])
    return Parsed("parquet", readings, bad)


def _row_json(t: int | None, unit: str, sensor: str | None, value: float | None) -> bytes:
    row: dict[str, Any] = {"timestamp": t, "sensor_id": sensor, "value": value}
    if unit != "us":
        row["timestamp_unit"] = unit  # the stored integer as it was, and what it counts
    if value is not None and not math.isfinite(value):
        row["value"] = str(value)  # JSON has no NaN/Infinity
    return json.dumps(row, separators=(",", ":")).encode()
