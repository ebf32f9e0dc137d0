"""File pickup: CSV/Parquet parsing with bad rows, the ledger, the settle rule, the FTP source.

Whole passes need the broker: tests/integration/test_files_pickup.py.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import FTPHandler
from typer.testing import CliRunner

from connectors.files.cli import app
from connectors.files.ledger import Entry, Ledger
from connectors.files.parse import BadRecord, FileError, layout_of, parse_file
from connectors.files.pickup import MAX_ORIGINAL, bad_row_letter
from connectors.files.settings import FilesSettings
from connectors.files.sources import FtpSource, Listing, Settle, _mlsd_time
from connectors.gateway.replay import MAX_US, Readings, packages
from connectors.gateway.report import BadRow
from contracts import MAX_INPUT_BYTES, DeadLetter
from contracts import avro as avro_codec
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


def test_csv_record_over_several_lines_keeps_all_its_bytes(tmp_path: Path) -> None:
    record = f'{T0 + 250_000},"{A}\r\nnot part of a UUID\r\n",9.0'.encode()
    good = csv_text(A, 3).encode().splitlines(keepends=True)  # header and 3 readings
    data = b"".join([*good[:3], record, b"\r\n", good[3]])  # the record on physical lines 4 to 6
    path = drop(tmp_path, "quoted.csv", data)
    [bad] = parse_file(path).bad
    assert bad.raw == record  # every line of it, inner breaks included; not the break after it
    assert (bad.row.line, bad.last_line) == (4, 6)  # from its first physical line to its last
    assert "UUID" in bad.row.reason
    letter = bad_row_letter("quoted.csv", "csv", bad, "file-drop", None)
    assert (letter.field, letter.original) == ("line 4", record)
    assert letter.detail.startswith("file quoted.csv lines 4-6: sensor_id ")


def test_csv_with_a_byte_order_mark_has_its_header_skipped(tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"  # what Excel's "CSV UTF-8" writes first
    path = drop(tmp_path, "excel.csv", bom + csv_text(A, 3).encode())
    parsed = parse_file(path)
    assert (len(parsed.readings.by_sensor[A]), parsed.bad) == (3, [])
    path = drop(tmp_path, "headless.csv", bom + f"warm,{A},1.0\n{T0},{A},2.0\n".encode())
    [bad] = parse_file(path).bad
    assert (bad.row.line, bad.raw) == (1, f"warm,{A},1.0".encode())  # the mark is the file's, not the row's


def test_csv_bad_timestamps_are_bad_rows_not_a_rejected_file(tmp_path: Path) -> None:
    odd = ["1795420800100000000", "0001-01-01T00:00:00+14:00", "\u00b2", "9" * 5000]
    rows = "".join(f"{cell},{A},1.0\r\n" for cell in odd)
    path = drop(tmp_path, "odd.csv", csv_text(A, 3) + rows)
    parsed = parse_file(path)
    assert len(parsed.readings.by_sensor[A]) == 3
    assert [(b.row.line, b.raw) for b in parsed.bad] == [(5 + i, f"{c},{A},1.0".encode()) for i, c in enumerate(odd)]
    assert all(b.row.reason.startswith("timestamp ") for b in parsed.bad)
    assert "1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z" in parsed.bad[0].row.reason


def test_parquet_timestamps_out_of_range_are_bad_rows_not_a_rejected_file(tmp_path: Path) -> None:
    path = tmp_path / "odd.parquet"
    millis = pa.array([T0 // 1000, 10**18, T0 // 1000 + 1], pa.timestamp("ms", tz="UTC"))
    pq.write_table(table(millis, [str(A)] * 3, [1.0, 2.0, 3.0]), path)
    parsed = parse_file(path)  # an Arrow cast to µs would fail the whole column on 10**18 ms
    assert parsed.readings.by_sensor == {A: [(T0, 1.0), (T0 + 1000, 3.0)]}
    [bad] = parsed.bad
    assert bad.row.line == 2
    assert bad.row.reason.startswith(f"timestamp {10**18} ms is outside 0..{MAX_US} epoch microseconds (1970-")
    assert bad.raw == f'{{"timestamp":{10**18},"sensor_id":"{A}","value":2.0,"timestamp_unit":"ms"}}'.encode()

    nanos = pa.array([T0 * 1000, T0 * 1000 + 1_000_123], pa.timestamp("ns", tz="UTC"))
    pq.write_table(table(nanos, [str(A)] * 2, [1.0, 2.0]), path)
    parsed = parse_file(path)  # the cast would "lose data" on the second and fail the column
    assert parsed.readings.by_sensor == {A: [(T0, 1.0)]}
    assert [(b.row.line, "not a whole microsecond" in b.row.reason) for b in parsed.bad] == [(2, True)]

    unsigned = pa.array([T0, 2**63 + 5], pa.uint64())
    big = 2**53 + 1  # an int64 value a safe Arrow cast to float64 refuses; a CSV cell reads it as float() does
    pq.write_table(pa.table({"timestamp": unsigned, "sensor_id": [str(A)] * 2, "value": pa.array([big, 5])}), path)
    parsed = parse_file(path)
    assert parsed.readings.by_sensor == {A: [(T0, float(big))]}
    assert [(b.row.line, "outside" in b.row.reason) for b in parsed.bad] == [(2, True)]


def test_a_bad_row_letter_keeps_at_most_max_original_bytes() -> None:
    raw = b"1," * 1_000_000  # a 2 MB line: as a whole, Kafka would refuse its dead letter
    bad = BadRecord(BadRow(file="big.csv", line=7, reason="expected 3 columns", text=""), raw, 7)
    letter = bad_row_letter("big.csv", "csv", bad, "file-drop", None)
    assert letter.original == raw[:MAX_ORIGINAL]
    assert (
        letter.detail == f"file big.csv line 7: expected 3 columns (original: first {MAX_ORIGINAL} of {len(raw)} bytes)"
    )
    encoded = avro_codec.encode(letter)
    assert len(encoded) < 1_000_000  # librdkafka's default message.max.bytes, below MAX_INPUT_BYTES
    assert avro_codec.decode(DeadLetter, encoded).original == raw[:MAX_ORIGINAL]
    small = BadRecord(BadRow(file="s.csv", line=3, reason="r", text=""), b"a,b", 3)
    assert bad_row_letter("s.csv", "csv", small, "file-drop", None).detail == "file s.csv line 3: r"


def test_the_largest_package_the_setting_allows_fits_one_kafka_message() -> None:
    [bound] = [m.le for m in FilesSettings.model_fields["samples_per_package"].metadata if hasattr(m, "le")]
    with pytest.raises(ValidationError, match="samples_per_package"):
        FilesSettings(samples_per_package=bound + 1)
    # The widest sample JSON can hold: an 18-digit time (the largest the parsers accept) and a 24-character value.
    times = range(MAX_US - bound + 1, MAX_US + 1)
    worst = Readings({A: [(t, -1.2345678901234567e-300 * (1 + i % 7)) for i, t in enumerate(times)]}, [])
    [message] = packages(worst, bound, "g" * 64)  # the longest gateway id
    assert message.samples == bound
    assert len(message.key) + len(message.value) + 1024 <= min(1_000_000, MAX_INPUT_BYTES)  # 1 KiB for framing


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


def test_mlsd_time_tolerates_what_servers_send() -> None:
    assert _mlsd_time("20261123080000") == T0 / 1_000_000
    assert _mlsd_time("20261123080000.250") == T0 / 1_000_000 + 0.25
    for odd in ("2026-11-23T08:00:00Z", "Tue Nov 23", "20261323080000", "20261123080000.x", "0"):
        assert _mlsd_time(odd) is None
    assert _mlsd_time(None) is None


def test_ftp_listing_with_odd_mlsd_facts(
    ftp_root: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server whose MLSD sends a `modify` and a `size` that are not RFC 3659's: the file is still listed (size
    from SIZE, no time), not a ValueError that ends the pass."""
    folder, port = ftp_root
    body = csv_text(A, 4)
    drop(folder, "odd.csv", body)
    drop(folder, "plain.csv", body)
    served = AbstractedFS.format_mlsx

    def odd_facts(fs: AbstractedFS, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        for line in served(fs, *args, **kwargs):
            if line.endswith(b" odd.csv\r\n"):
                line = re.sub(rb"modify=\d+", b"modify=2026-11-23T08:00:00Z", line)
                line = re.sub(rb"size=\d+", b"size=1.5k", line)
            yield line

    monkeypatch.setattr(AbstractedFS, "format_mlsx", odd_facts)
    source = FtpSource("127.0.0.1", port, "vigil", "secret", "/drop", tmp_path / "staging", timeout_s=5)
    try:
        odd, plain = source.scan()
    finally:
        source.close()
    assert (odd.name, odd.size, odd.mtime) == ("odd.csv", len(body.encode()), None)
    assert (plain.name, plain.size) == ("plain.csv", len(body.encode()))
    assert plain.mtime is not None


def test_ftp_listing_without_mlsd(ftp_root: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The NLST fallback: SIZE after NLST's switch to ASCII mode must not read as "a directory"."""
    folder, port = ftp_root
    body = csv_text(A, 4)
    drop(folder, "plain.csv", body)

    def no_mlsd(handler: FTPHandler, path: str) -> None:
        handler.respond("502 Command not implemented.")

    monkeypatch.setattr(FTPHandler, "ftp_MLSD", no_mlsd)
    source = FtpSource("127.0.0.1", port, "vigil", "secret", "/drop", tmp_path / "staging", timeout_s=5)
    try:
        [item] = source.scan()
    finally:
        source.close()
    assert (item.name, item.size) == ("plain.csv", len(body.encode()))
    assert item.mtime is not None
    assert abs(item.mtime - OLD) < 2


def test_ledger_command_lists_processed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_FILES_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")  # rich would truncate the table to the runner's 80 columns
    with Ledger(FilesSettings().ledger_file) as book:
        book.record(entry("line-3.csv", "ab" * 32))
    result = CliRunner().invoke(app, ["ledger"])
    assert result.exit_code == 0, result.output
    assert "line-3.csv" in result.output
