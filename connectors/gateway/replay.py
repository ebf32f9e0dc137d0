"""Replay a CSV of timestamped readings as edge packages.

CSV layout (UTF-8, with or without a byte-order mark, comma-separated, one reading per row,
an optional header row):

    timestamp,sensor_id,value
    2026-11-23T08:00:00.000+01:00,6f1c2a0e-4b7d-4e8a-9c51-2f3d8e9a0b11,20.5
    1795420800100000,6f1c2a0e-4b7d-4e8a-9c51-2f3d8e9a0b11,

- `timestamp`: ISO-8601 with a UTC offset (`Z` or `+hh:mm`; naive times are rejected as
  ambiguous), or an integer count of microseconds since the Unix epoch (UTC), in ASCII
  digits. Either must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z.
- `sensor_id`: the sensor's UUID (its metadata should already be on `edge.metadata.v1`,
  or be given with `--metadata`; packages of unknown sensors are parked by the stream).
- `value`: a number in the sensor's declared unit; empty, `null` or `NaN` is a failed
  reading (sent as null). Infinity is an error.

Blank lines and lines starting with `#` are ignored. Rows may come in any order: each
sensor's readings are sorted by time and cut into packages of N samples. A bad row
(wrong column count, bad or out-of-range time, bad UUID, bad number, a record the CSV
reader refuses, or a second reading of a sensor at the same instant) is reported with its
file, first line and reason and skipped; it never stops the replay. Package ids are
derived from the sensor and the package's first time, so replaying a file twice produces
duplicates the stream drops, not double data.
"""

from __future__ import annotations

import csv
import json
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

from connectors.gateway.clock import to_datetime, to_us
from connectors.gateway.report import BadRow
from connectors.gateway.simulate import Outgoing, wall_clock_us
from contracts import MAX_SAMPLES, EdgePackage, Samples, SensorDescription, Window

HEADER: Final = ("timestamp", "sensor_id", "value")
NULLS: Final = frozenset({"", "null", "nan", "none"})
# Namespace of replayed package ids (uuid5 over sensor id and first sample time).
REPLAY_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://w3id.org/vigil/replay")
# Sample times a file may hold, in epoch µs: from the epoch to the last instant a datetime can represent. Outside
# it `to_datetime` overflows when the package is built, and one such row would sink its whole file.
MAX_US: Final = to_us(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
TIME_RANGE: Final = f"0..{MAX_US} epoch microseconds (1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z)"
SHOWN_CHARS: Final = 40
# A package must fit one Kafka message: MAX_INPUT_BYTES (contracts/topics.py) on the topic, and 1,000,000 bytes
# in the producer (librdkafka's default message.max.bytes, which producer_config keeps). A bound on the count is
# simpler than splitting by bytes and just as safe, because a sample's JSON has a worst case: a time of at most
# 18 digits (the parsers accept 1970..9999, so at most 253402300799999999) and a value of at most 24 characters
# (-1.2345678901234567e-300), each with a comma: 44 bytes. 20,000 samples are at most 880,000 bytes, and the rest
# of the package (ids, gateway id of <= 64 characters, three times, the @context) under 1 KiB: 881,024 bytes, with
# room to spare under both limits (tests/unit/test_files_pickup.py builds that worst case). The contract's
# MAX_SAMPLES (100,000) would allow ~4.4 MB packages: Kafka refuses those, and a file would fail every pass.
MAX_SAMPLES_PER_PACKAGE: Final = 20_000


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


def shown(text: str) -> str:
    """A cell as a reason quotes it: cut, since a reason names the bad value and must not carry a megabyte of it
    (the row's full bytes travel in its dead letter)."""
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}... ({len(text)} characters)"


def check_us(us: int, what: str, *, given_in_us: bool = True) -> int:
    """`us` if it is a time a package can carry; `what` names the value in the error. A value given in µs that
    is ~1000 times too large is most likely nanoseconds: the error says so."""
    if not 0 <= us <= MAX_US:
        hint = " (nanoseconds? the column takes microseconds)" if given_in_us and MAX_US < us < 10**22 else ""
        raise RowError(f"timestamp {what} is outside {TIME_RANGE}{hint}")
    return us


def parse_time(text: str) -> int:
    text = text.strip()
    # ASCII only: str.isdigit is also true for '²' or other scripts' digits, which int() refuses or misreads.
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0") or "0"
        if len(digits) > 30:  # far out of range, and int() refuses strings over 4300 digits
            raise RowError(f"timestamp {shown(text)} is outside {TIME_RANGE}")
        return check_us(int(digits), shown(text))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"timestamp {shown(text)} is neither ISO-8601 nor epoch microseconds") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RowError(f"timestamp {shown(text)} has no UTC offset (add 'Z' or '+hh:mm')")
    try:
        us = to_us(moment)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: before year 1 in UTC
        raise RowError(f"timestamp {shown(text)} is outside {TIME_RANGE}") from None
    return check_us(us, shown(text))


def parse_value(text: str) -> float | None:
    text = text.strip()
    if text.lower() in NULLS:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RowError(f"value {shown(text)} is not a number") from None
    if not math.isfinite(value):
        raise RowError(f"value {shown(text)} is not finite")
    return value


def parse_row(row: list[str]) -> tuple[int, uuid.UUID, float | None]:
    if len(row) != len(HEADER):
        raise RowError(f"expected {len(HEADER)} columns (timestamp,sensor_id,value), got {len(row)}")
    try:
        sensor = uuid.UUID(row[1].strip())
    except ValueError:
        raise RowError(f"sensor_id {shown(row[1])} is not a UUID") from None
    return parse_time(row[0]), sensor, parse_value(row[2])


def records(handle: TextIO) -> Iterator[tuple[range, list[str] | csv.Error]]:
    """Each CSV record with the physical lines it spans (a quoted field may hold line breaks), or the error the
    reader raised for it (a field over csv.field_size_limit, ...): that is one bad record, not a broken file."""
    reader = csv.reader(handle)
    end = 0
    while True:
        try:
            row: list[str] | csv.Error = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if reader.line_num == end:  # refused without reading a line: asking again would loop forever
                raise
            row = exc
        start, end = end + 1, reader.line_num
        yield range(start, end + 1), row


def read_csv(path: Path) -> Readings:
    return read_csv_lines(path)[0]


def read_csv_lines(path: Path) -> tuple[Readings, list[range]]:
    """`read_csv`, and the physical lines each bad row spans (in `bad_rows` order; a BadRow has its first)."""
    by_sensor: dict[uuid.UUID, dict[int, float | None]] = {}
    bad: list[BadRow] = []
    spans: list[range] = []
    # utf-8-sig: Excel starts a UTF-8 CSV with a byte-order mark, which would otherwise glue onto the header.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for lines, row in records(handle):
            if isinstance(row, csv.Error):
                reason = f"unreadable CSV record ({row})"
                bad.append(BadRow(file=str(path), line=lines.start, reason=reason, text=""))
                spans.append(lines)
                continue
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if lines.start == 1 and tuple(c.strip().lower() for c in row) == HEADER:
                continue
            try:
                t, sensor, value = parse_row(row)
                seen = by_sensor.setdefault(sensor, {})
                if t in seen:
                    raise RowError("second reading of this sensor at the same time (times must strictly increase)")
            except RowError as exc:
                bad.append(BadRow(file=str(path), line=lines.start, reason=str(exc), text=",".join(row)[:200]))
                spans.append(lines)
                continue
            seen[t] = value
    return Readings({s: sorted(v.items()) for s, v in by_sensor.items()}, bad), spans


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
