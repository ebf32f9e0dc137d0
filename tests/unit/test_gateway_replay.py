"""Gateway replay: a CSV of readings becomes valid packages; bad rows are reported, never fatal."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from connectors.gateway.clock import parse_us
from connectors.gateway.replay import MAX_US, RowError, load_descriptions, packages, parse_time, read_csv
from contracts import EdgePackage

pytestmark = pytest.mark.unit

A = uuid.UUID("6f1c2a0e-4b7d-4e8a-9c51-2f3d8e9a0b11")
B = uuid.UUID("0b9e7c4e-1d2f-4a3b-8c5d-6e7f8a9b0c1d")
T0 = 1_795_420_800_000_000  # 2026-11-23T08:00:00Z

CSV = f"""timestamp,sensor_id,value
# rows of two sensors, out of order, with one failed reading and a handful of bad rows
2026-11-23T09:00:00.000+01:00,{A},20.0
{T0 + 200_000},{A},20.2
{T0 + 100_000},{A},
2026-11-23T08:00:00.300Z,{A},20.3
{T0},{B},1.5
{T0 + 100_000},{B},NaN
2026-11-23T08:00:00,{A},1.0
{T0 + 400_000},not-a-uuid,1.0
{T0 + 500_000},{A},warm
{T0 + 600_000},{A}
{T0},{A},99.0
{T0 + 700_000},{A},inf

{T0 + 800_000},{A},20.8
"""


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "readings.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_rows_are_grouped_sorted_and_bad_rows_reported(csv_file: Path) -> None:
    readings = read_csv(csv_file)
    assert readings.by_sensor[A] == [
        (T0, 20.0),
        (T0 + 100_000, None),
        (T0 + 200_000, 20.2),
        (T0 + 300_000, 20.3),
        (T0 + 800_000, 20.8),
    ]
    assert readings.by_sensor[B] == [(T0, 1.5), (T0 + 100_000, None)]
    bad = {row.line: row.reason for row in readings.bad_rows}
    assert sorted(bad) == [9, 10, 11, 12, 13, 14]
    assert "UTC offset" in bad[9]
    assert "UUID" in bad[10]
    assert "not a number" in bad[11]
    assert "columns" in bad[12]
    assert "same time" in bad[13]
    assert "finite" in bad[14]
    assert all(row.file == str(csv_file) for row in readings.bad_rows)


def test_packages_validate_and_hold_every_good_reading(csv_file: Path) -> None:
    readings = read_csv(csv_file)
    out = list(packages(readings, samples_per_package=2, gateway_id="gw-replay", now_us=lambda: T0 + 3_600_000_000))
    parsed = [EdgePackage.from_wire(m.value) for m in out]
    assert [len(p.samples.t) for p in parsed if p.samples] == [2, 2, 1, 2]
    assert sum(m.samples for m in out) == readings.count == 7
    for message, package in zip(out, parsed, strict=True):
        assert message.key == str(package.sensor_id).encode()
        assert package.samples is not None
        assert parse_us(package.window.start.isoformat()) == package.samples.t[0]
        assert parse_us(package.window.end.isoformat()) == package.samples.t[-1]
        assert package.clock_offset_ms == 0.0
    assert parsed[0].samples is not None
    assert parsed[0].samples.v == [20.0, None]


def test_replaying_twice_gives_the_same_package_ids(csv_file: Path) -> None:
    first = [m.package_id for m in packages(read_csv(csv_file), 3, "gw-replay", now_us=lambda: T0)]
    second = [m.package_id for m in packages(read_csv(csv_file), 3, "gw-replay", now_us=lambda: T0 + 10**9)]
    assert first == second
    assert len(set(first)) == len(first)


def test_load_descriptions_accepts_json_lines_and_arrays(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "contracts" / "examples" / "sensor_description.json"
    text = example.read_text(encoding="utf-8")
    lines = tmp_path / "sensors.jsonl"
    lines.write_text(text.replace("\n", "") + "\n", encoding="utf-8")
    array = tmp_path / "sensors.json"
    array.write_text(f"[{text}]", encoding="utf-8")
    assert load_descriptions(lines) == load_descriptions(array)
    assert load_descriptions(lines)[0].sensor_id == A


RANGE = "1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"


@pytest.mark.parametrize(
    ("cell", "says"),
    [
        ("1795420800100000000", "nanoseconds?"),  # 2026 in ns: would overflow the package's window
        ("0001-01-01T00:00:00+14:00", RANGE),  # before year 1 in UTC: astimezone overflows
        ("9999-12-31T23:30:00-01:00", RANGE),  # after year 9999 in UTC
        ("1969-12-31T23:59:59.999999Z", RANGE),  # before the epoch: Parquet refuses it too
        ("\u00b2", "neither ISO-8601 nor epoch"),  # '²': str.isdigit says yes, int() says no
        ("\u0661\u0662\u0663", "neither ISO-8601 nor epoch"),  # Arabic-Indic 123: not ASCII digits
        ("9" * 5000, RANGE),  # int() refuses strings over 4300 digits
    ],
)
def test_a_timestamp_out_of_range_is_one_bad_row_and_the_rest_goes(tmp_path: Path, cell: str, says: str) -> None:
    path = tmp_path / "odd.csv"
    path.write_text(f"timestamp,sensor_id,value\n{T0},{A},1.0\n{cell},{A},2.0\n{T0 + 1},{A},3.0\n", encoding="utf-8")
    readings = read_csv(path)
    assert readings.by_sensor == {A: [(T0, 1.0), (T0 + 1, 3.0)]}
    [bad] = readings.bad_rows
    assert bad.line == 3
    assert bad.reason.startswith("timestamp ")  # names the column
    assert says in bad.reason
    assert len(bad.reason) < 250  # quotes the value cut short, however long it is
    assert len(list(packages(readings, 10, "gw-replay"))) == 1


def test_time_range_edges() -> None:
    assert parse_time("0") == 0
    assert parse_time(str(MAX_US)) == MAX_US
    assert parse_time("9999-12-31T23:59:59.999999Z") == MAX_US
    assert parse_time("0" * 5000 + "7") == 7  # leading zeros do not count against int()'s digit limit
    with pytest.raises(RowError, match=r"outside 0\.\.253402300799999999 epoch microseconds"):
        parse_time(str(MAX_US + 1))


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"timestamp,sensor_id,value\r\n{T0},{A},1.5\r\n".encode())
    readings = read_csv(path)
    assert (readings.by_sensor, readings.bad_rows) == ({A: [(T0, 1.5)]}, [])


def test_a_bad_record_over_several_lines_is_reported_at_its_first(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text(f'timestamp,sensor_id,value\n{T0},"{A}\nsecond\nthird",1.0\n{T0 + 1},{A},2.0\n', encoding="utf-8")
    readings = read_csv(path)
    [bad] = readings.bad_rows
    assert (bad.line, "UUID" in bad.reason) == (2, True)
    assert readings.by_sensor == {A: [(T0 + 1, 2.0)]}


def test_a_record_the_csv_reader_refuses_is_one_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(f"{T0},{A},1.0\n{T0 + 1},{A},{'7' * 200_000}\n{T0 + 2},{A},3.0\n", encoding="utf-8")
    readings = read_csv(path)
    [bad] = readings.bad_rows
    assert (bad.line, "field larger than field limit" in bad.reason) == (2, True)
    assert readings.by_sensor == {A: [(T0, 1.0), (T0 + 2, 3.0)]}
