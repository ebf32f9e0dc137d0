"""File pickup: CSV/Parquet parsing with bad rows, the ledger, the settle rule, the FTP source.

Whole passes need the broker: tests/integration/test_files_pickup.py.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from connectors.files.cli import app
from connectors.files.ledger import Entry, Ledger
from connectors.files.parse import FileError, layout_of, parse_file
from connectors.files.settings import FilesSettings
from connectors.files.sources import FtpSource, Listing, Settle
from tests.ftp_server import ftp_drop_folder

pytestmark = pytest.mark.unit

A = uuid.UUID("6f1c2a0e-4b7d-4e8a-9c51-2f3d8e9a0b11")
B = uuid.UUID("0b9e7c4e-1d2f-4a3b-8c5d-6e7f8a9b0c1d")
T0 = 1_795_420_800_000_000  # 2026-11-23T08:00:00Z
OLD = time.time() - 3600  # mtime of files that are long settled


def csv_text(sensor: uuid.UUID, n: int, bad_line: str | None = None) -> str:
    rows = ["timestamp,sensor_id,value", *(f"{T0 + i * 100_000},{sensor},{20 + i / 10}" for i in range(n))]
    if bad_line is not None:
        rows.insert(3, bad_line)  # becomes physical line 4
    return "\r\n".join(rows) + "\r\n"


def drop(folder: Path, name: str, data: str | bytes, mtime: float = OLD) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(data, str):
        path.write_bytes(data.encode())
    else:
        path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


# --- parsing -------------------------------------------------------------------------------------------


def test_csv_good_rows_ingested_bad_rows_keep_line_and_raw_bytes(tmp_path: Path) -> None:
    path = drop(tmp_path, "in.csv", csv_text(A, 5, bad_line=f"2026-11-23T08:00:00,{A},1.0"))
    parsed = parse_file(path, "plant-7.csv")
    assert parsed.layout == "csv"
    assert [t for t, _ in parsed.readings.by_sensor[A]] == [T0 + i * 100_000 for i in range(5)]
    [bad] = parsed.bad
    assert (bad.row.file, bad.row.line) == ("plant-7.csv", 4)
    assert "UTC offset" in bad.row.reason
    assert bad.raw == f"2026-11-23T08:00:00,{A},1.0".encode()  # the line's bytes, without its CRLF
    assert parsed.readings.bad_rows == [bad.row]


def table(times: pa.Array, sensors: Sequence[str | None], values: list[float | None]) -> pa.Table:
    return pa.table(
        {"timestamp": times, "sensor_id": pa.array(sensors, pa.string()), "value": pa.array(values, pa.float64())}
    )


def test_parquet_int64_micros_with_bad_rows_by_row_number(tmp_path: Path) -> None:
    times = pa.array([T0 + 100_000, T0, None, T0 + 200_000, T0 + 300_000, T0, T0 + 400_000], pa.int64())
    sensors = [str(A), str(A), str(A), "pump-1", str(A), str(A), str(B)]
    values = [1.0, float("nan"), 3.0, 4.0, float("inf"), 6.0, None]
    path = tmp_path / "x.parquet"
    pq.write_table(table(times, sensors, values), path)

    parsed = parse_file(path)

    assert parsed.layout == "parquet"
    assert parsed.readings.by_sensor == {A: [(T0, None), (T0 + 100_000, 1.0)], B: [(T0 + 400_000, None)]}
    bad = {b.row.line: b for b in parsed.bad}
    assert sorted(bad) == [3, 4, 5, 6]
    assert "null" in bad[3].row.reason
    assert "UUID" in bad[4].row.reason
    assert "finite" in bad[5].row.reason
    assert "same time" in bad[6].row.reason
    assert bad[4].raw == f'{{"timestamp":{T0 + 200_000},"sensor_id":"pump-1","value":4.0}}'.encode()
    assert b'"value":"inf"' in bad[5].raw


def test_parquet_utc_timestamps_and_whole_file_errors(tmp_path: Path) -> None:
    utc = pa.array([T0, T0 + 1], pa.timestamp("us", tz="UTC"))
    path = tmp_path / "utc.pq"
    pq.write_table(table(utc, [str(A), str(A)], [1.0, 2.0]), path)
    assert parse_file(path).readings.by_sensor == {A: [(T0, 1.0), (T0 + 1, 2.0)]}

    ms = pa.array([T0 // 1000], pa.timestamp("ms", tz="Europe/Berlin"))  # any unit and zone, read as UTC µs
    pq.write_table(table(ms, [str(A)], [1.0]), path)
    assert parse_file(path).readings.by_sensor == {A: [(T0, 1.0)]}

    pq.write_table(table(pa.array([T0], pa.timestamp("us")), [str(A)], [1.0]), path)
    with pytest.raises(FileError, match="no time zone"):
        parse_file(path)
    pq.write_table(pa.table({"timestamp": [T0], "value": [1.0]}), path)
    with pytest.raises(FileError, match="sensor_id"):
        parse_file(path)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(FileError, match="Parquet"):
        parse_file(path)
    (tmp_path / "latin.csv").write_bytes(b"timestamp,sensor_id,value\n\xe9\n")
    with pytest.raises(FileError, match="UTF-8"):
        parse_file(tmp_path / "latin.csv")


def test_only_csv_and_parquet_names_are_picked() -> None:
    assert [layout_of(n) for n in ("a.csv", "B.CSV", "c.parquet", "d.pq")] == ["csv", "csv", "parquet", "parquet"]
    assert [layout_of(n) for n in (".a.csv", "a.csv.part", "a.tmp", "notes.txt")] == [None] * 4


# --- ledger and settle rule ----------------------------------------------------------------------------


def entry(name: str, sha: str, mtime: float | None = 1.5) -> Entry:
    from datetime import UTC, datetime

    return Entry(name, 10, sha, "local:/in", mtime, "ingested", 2, 20, 1, datetime.now(UTC))


def test_ledger_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "ledger.sqlite"
    with Ledger(path) as book:
        book.record(entry("a.csv", "0" * 64))
    with Ledger(path) as book:
        assert book.has("a.csv", 10, "0" * 64)
        assert not book.has("a.csv", 10, "1" * 64)  # same name, other content: new file
        assert not book.has("b.csv", 10, "0" * 64)  # same content, other name: new file
        assert book.has_listing("local:/in", "a.csv", 10, 1.5)
        assert not book.has_listing("local:/in", "a.csv", 10, 2.5)
        assert not book.has_listing("local:/in", "a.csv", 10, None)
        [e] = book.entries()
        assert (e.name, e.packages, e.samples, e.bad_rows, e.status) == ("a.csv", 2, 20, 1, "ingested")


def test_settle_rule() -> None:
    settle = Settle(seconds=10)
    fresh = Listing("a.csv", 100, 1000.0)
    assert not settle.ready("s", fresh, now=1002.0)  # young, first sight
    assert settle.ready("s", fresh, now=1003.0)  # unchanged since the previous poll
    grown = Listing("a.csv", 200, 1004.0)
    assert not settle.ready("s", grown, now=1005.0)  # changed between polls: still being written
    assert settle.ready("s", grown, now=1006.0)
    assert settle.ready("s", Listing("old.csv", 5, 900.0), now=1006.0)  # old enough on first sight
    assert not settle.ready("s", Listing("b.csv", 5, None), now=1006.0)  # no mtime: needs two polls
    settle.forget_missing("s", {"b.csv"})
    assert not settle.ready("s", fresh, now=1007.0)  # forgotten once gone: first sight again
    assert Settle(seconds=0).ready("s", fresh, now=1000.0)


# --- FTP ---------------------------------------------------------------------------------------------------


@pytest.fixture
def ftp_root(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    with ftp_drop_folder(tmp_path / "ftp") as served:
        yield served


def test_ftp_listing_and_download(ftp_root: tuple[Path, int], tmp_path: Path) -> None:
    folder, port = ftp_root
    body = csv_text(A, 12)
    drop(folder, "remote.csv", body)
    drop(folder, "ignored.txt", "x")
    (folder / "sub.csv").mkdir()  # a directory named like a file is not listed
    source = FtpSource("127.0.0.1", port, "vigil", "secret", "/drop", tmp_path / "staging", timeout_s=5)

    [item] = source.scan()
    assert (item.name, item.size) == ("remote.csv", len(body.encode()))
    assert item.mtime is not None
    assert abs(item.mtime - OLD) < 2
    path = source.fetch(item)
    assert path.read_bytes() == body.encode()
    source.release(item, path)
    assert not path.exists()
    source.close()


def test_ledger_command_lists_processed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_FILES_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")  # rich would truncate the table to the runner's 80 columns
    with Ledger(FilesSettings().ledger_file) as book:
        book.record(entry("line-3.csv", "ab" * 32))
    result = CliRunner().invoke(app, ["ledger"])
    assert result.exit_code == 0, result.output
    assert "line-3.csv" in result.output
