"""Gateway replay: a CSV of readings becomes valid packages; bad rows are reported, never fatal."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from connectors.gateway.clock import parse_us
from connectors.gateway.replay import load_descriptions, packages, read_csv
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
