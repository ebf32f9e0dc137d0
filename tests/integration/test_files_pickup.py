"""The file pickup against the real Kafka: exact packages and dead letters per pass, nothing again after a restart,
a file recorded only once the broker acknowledged all of it.

Other producers may write to the same topics meanwhile, so the test uses fresh sensor
UUIDs, a unique gateway id and unique file names, and counts only its own messages
between the end offsets recorded before a pass and those after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.files.ledger import Ledger
from connectors.files.pickup import MAX_ORIGINAL, Pickup
from connectors.files.settings import FilesSettings
from contracts import DeadLetter, EdgePackage, ReasonCode
from contracts import avro as avro_codec
from tests.ftp_server import ftp_drop_folder
from tests.kafka_keyed import ends, read_keyed, refusing_writes

pytestmark = pytest.mark.integration

PACKAGES, DEADLETTER = "edge.packages.v1", "edge.deadletter.v1"


@pytest.fixture
def ftp_drop(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    with ftp_drop_folder(tmp_path / "ftp") as served:
        yield served


def _csv(rows: list[str]) -> bytes:
    return ("timestamp,sensor_id,value\n" + "\n".join(rows) + "\n").encode()


def _age(path: Path) -> None:
    old = time.time() - 600  # settled long ago: ready on first sight
    os.utime(path, (old, old))


def test_one_pass_sends_exactly_and_a_restart_sends_nothing(
    kafka: str, ftp_drop: tuple[Path, int], tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    gateway = f"files-it-{run}"
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    t0 = (int(time.time()) - 3600) * 1_000_000
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    # CSV: 25 readings of a, 12 of b (10 per package: 3 + 2 packages) and one bad row on physical line 5.
    rows = [f"{t0 + i * 100_000},{x},{20 + i / 10}" for x, n in ((a, 25), (b, 12)) for i in range(n)]
    rows.insert(3, f"{t0},{a},warm")
    csv_name = f"plant-{run}.csv"
    (inbox / csv_name).write_bytes(_csv(rows))
    # Parquet: 21 readings of c with timestamp[us, UTC] (3 packages).
    parquet_name = f"plant-{run}.parquet"
    times = pa.array([t0 + i * 1000 for i in range(21)], pa.timestamp("us", tz="UTC"))
    table = pa.table({"timestamp": times, "sensor_id": [str(c)] * 21, "value": pa.array([1.5] * 21, pa.float64())})
    pq.write_table(table, inbox / parquet_name)
    # FTP: 7 readings of d (1 package).
    folder, port = ftp_drop
    ftp_name = f"remote-{run}.csv"
    (folder / ftp_name).write_bytes(_csv([f"{t0 + i * 1000},{d},{i}" for i in range(7)]))
    for path in (inbox / csv_name, inbox / parquet_name, folder / ftp_name):
        _age(path)

    settings = FilesSettings(
        data_dir=tmp_path / "data",
        watch_dir=inbox,
        samples_per_package=10,
        gateway_id=gateway,
        ftp_host="127.0.0.1",
        ftp_port=port,
        ftp_user="vigil",
        ftp_password="secret",  # pydantic turns it into a SecretStr
        ftp_dir="/drop",
        kafka_bootstrap=kafka,
    )
    sensor_keys = {str(s).encode() for s in (a, b, c, d)}
    file_keys = {n.encode() for n in (csv_name, parquet_name, ftp_name)}
    before = {t: ends(kafka, t) for t in (PACKAGES, DEADLETTER)}

    pickup = Pickup(settings)
    summary = pickup.run_once()

    middle = {t: ends(kafka, t) for t in (PACKAGES, DEADLETTER)}
    assert {(f.name, f.outcome) for f in summary.files} == {
        (csv_name, "ingested"),
        (parquet_name, "ingested"),
        (ftp_name, "ingested"),
    }
    packages = [
        EdgePackage.from_wire(v)
        for _, v in read_keyed(kafka, PACKAGES, before[PACKAGES], middle[PACKAGES], sensor_keys)
    ]
    assert len(packages) == summary.packages == 3 + 2 + 3 + 1
    assert {p.gateway_id for p in packages} == {gateway}
    per_sensor = {s: sum(len(p.samples.t) for p in packages if p.sensor_id == s and p.samples) for s in (a, b, c, d)}
    assert per_sensor == {a: 25, b: 12, c: 21, d: 7}
    letters = [
        avro_codec.decode(DeadLetter, v)
        for _, v in read_keyed(kafka, DEADLETTER, before[DEADLETTER], middle[DEADLETTER], file_keys)
    ]
    [letter] = [x for x in letters if x.gateway_id == gateway]
    assert (letter.reason, letter.stage, letter.field) == (ReasonCode.BAD_ROW, "files", "line 5")
    assert letter.source_topic == f"file:{csv_name}"
    assert f"{csv_name} line 5" in letter.detail
    assert letter.original == f"{t0},{a},warm".encode()

    # Second pass of the same object, then a fresh one on the same ledger (a restart) with a copy re-dropped.
    assert pickup.run_once().files == []
    pickup.close()
    (inbox / csv_name).write_bytes(_csv(rows))
    _age(inbox / csv_name)
    restarted = Pickup(settings)
    again = restarted.run_once()
    restarted.close()
    assert [(f.name, f.outcome) for f in again.files] == [(csv_name, "duplicate")]
    assert again.known == 1  # the FTP file, still on the server
    done = sorted(p.name for p in settings.done_dir.iterdir())
    assert len(done) == 3  # the copy is moved aside too, under a fresh name; FTP files stay on the server
    assert {csv_name, parquet_name} <= set(done)

    after = {t: ends(kafka, t) for t in (PACKAGES, DEADLETTER)}
    assert read_keyed(kafka, PACKAGES, middle[PACKAGES], after[PACKAGES], sensor_keys) == []
    assert read_keyed(kafka, DEADLETTER, middle[DEADLETTER], after[DEADLETTER], file_keys) == []


def _settings(tmp_path: Path, kafka: str, gateway: str, **extra: Any) -> FilesSettings:
    base = FilesSettings(data_dir=tmp_path / "data", samples_per_package=10, gateway_id=gateway, kafka_bootstrap=kafka)
    return base.model_copy(update=extra)


def test_unusable_file_is_rejected_whole_and_a_young_file_waits_one_pass(kafka: str, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    settings = _settings(tmp_path, kafka, f"files-it-{run}")
    settings.inbox.mkdir(parents=True)
    sensor = uuid.uuid4()
    t0 = (int(time.time()) - 3600) * 1_000_000
    broken, young = f"broken-{run}.parquet", f"young-{run}.csv"
    (settings.inbox / broken).write_bytes(b"PAR1 garbage")
    _age(settings.inbox / broken)
    (settings.inbox / young).write_bytes(_csv([f"{t0 + i * 1000},{sensor},{i}" for i in range(3)]))  # mtime: now
    before = {t: ends(kafka, t) for t in (PACKAGES, DEADLETTER)}

    pickup = Pickup(settings)
    first = pickup.run_once()
    second = pickup.run_once()  # young.csv unchanged since the last pass: settled now
    pickup.close()

    after = {t: ends(kafka, t) for t in (PACKAGES, DEADLETTER)}
    assert ([(f.name, f.outcome) for f in first.files], first.waiting) == ([(broken, "rejected")], 1)
    assert [(f.name, f.outcome, f.packages) for f in second.files] == [(young, "ingested", 1)]
    [(_, value)] = read_keyed(kafka, DEADLETTER, before[DEADLETTER], after[DEADLETTER], {broken.encode()})
    letter = avro_codec.decode(DeadLetter, value)
    assert (letter.reason, letter.stage, letter.field) == (ReasonCode.BAD_ROW, "files", "file")
    assert (letter.original, letter.source_topic) == (b"PAR1 garbage", f"file:{broken}")
    [(_, value)] = read_keyed(kafka, PACKAGES, before[PACKAGES], after[PACKAGES], {str(sensor).encode()})
    assert EdgePackage.from_wire(value).gateway_id == settings.gateway_id
    assert [p.name for p in settings.rejected_dir.iterdir()] == [broken]
    assert [p.name for p in settings.done_dir.iterdir()] == [young]
    assert list(settings.inbox.iterdir()) == []


def test_file_the_broker_refused_is_not_recorded_and_goes_again_next_pass(kafka: str, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    settings = _settings(tmp_path, kafka, f"files-it-{run}", after="leave", delivery_timeout_s=10)
    settings.inbox.mkdir(parents=True)
    sensor = uuid.uuid4()
    t0 = (int(time.time()) - 3600) * 1_000_000
    name = f"refused-{run}.csv"
    (settings.inbox / name).write_bytes(_csv([f"{t0 + i * 1000},{sensor},{i}" for i in range(15)]))
    _age(settings.inbox / name)
    keys = {str(sensor).encode()}
    pickup = Pickup(settings)

    with refusing_writes(kafka, PACKAGES):
        before = ends(kafka, PACKAGES)
        refused = pickup.run_once()
        assert read_keyed(kafka, PACKAGES, before, ends(kafka, PACKAGES), keys) == []
    [failed] = refused.files
    assert (failed.name, failed.outcome) == (name, "failed")
    assert "too large" in failed.detail
    assert pickup.ledger.entries() == []

    before = ends(kafka, PACKAGES)
    retried = pickup.run_once()
    assert [(f.name, f.outcome, f.packages) for f in retried.files] == [(name, "ingested", 2)]
    assert len(read_keyed(kafka, PACKAGES, before, ends(kafka, PACKAGES), keys)) == 2
    assert [e.name for e in pickup.ledger.entries()] == [name]
    assert (settings.inbox / name).exists()  # after=leave
    later = pickup.run_once()
    assert (later.files, later.known) == ([], 1)  # unchanged listing: skipped without reading
    pickup.close()


def test_an_oversized_bad_row_is_a_capped_letter_and_the_pass_goes_on(kafka: str, tmp_path: Path) -> None:
    """A bad row over Kafka's 1 MB message limit used to crash the pass, and every restart, with
    MSG_SIZE_TOO_LARGE: the file stayed in the inbox and the files after it were never taken."""
    run = uuid.uuid4().hex[:8]
    settings = _settings(tmp_path, kafka, f"files-it-{run}")
    settings.inbox.mkdir(parents=True)
    a, b = uuid.uuid4(), uuid.uuid4()
    t0 = (int(time.time()) - 3600) * 1_000_000
    oversized = f"{t0 + 50},{a}," + ",".join(["9"] * 600_000)  # 1.2 MB, 600,002 columns
    rows = [f"{t0 + i * 100_000},{a},{i}" for i in range(20)]
    rows.insert(2, oversized)  # physical line 4
    big, after = f"a-big-{run}.csv", f"b-after-{run}.csv"
    (settings.inbox / big).write_bytes(_csv(rows))
    (settings.inbox / after).write_bytes(_csv([f"{t0 + i * 1000},{b},{i}" for i in range(5)]))
    for name in (big, after):
        _age(settings.inbox / name)
    before = {t: ends(kafka, t) for t in (PACKAGES, DEADLETTER)}

    pickup = Pickup(settings)
    summary = pickup.run_once()
    pickup.close()

    after_ends = {t: ends(kafka, t) for t in (PACKAGES, DEADLETTER)}
    assert [(f.name, f.outcome, f.packages, f.samples, f.bad_rows) for f in summary.files] == [
        (big, "ingested", 2, 20, 1),
        (after, "ingested", 1, 5, 0),
    ]
    sent = read_keyed(kafka, PACKAGES, before[PACKAGES], after_ends[PACKAGES], {str(a).encode(), str(b).encode()})
    per_sensor: Counter[uuid.UUID] = Counter()
    for _, value in sent:
        package = EdgePackage.from_wire(value)
        assert package.samples is not None
        per_sensor[package.sensor_id] += len(package.samples.t)
    assert per_sensor == {a: 20, b: 5}
    [letter] = [
        letter
        for _, v in read_keyed(kafka, DEADLETTER, before[DEADLETTER], after_ends[DEADLETTER], {big.encode()})
        if (letter := avro_codec.decode(DeadLetter, v)).gateway_id == settings.gateway_id
    ]
    raw = oversized.encode()
    assert (letter.reason, letter.field, letter.original) == (ReasonCode.BAD_ROW, "line 4", raw[:MAX_ORIGINAL])
    assert letter.detail == (
        f"file {big} line 4: expected 3 columns (timestamp,sensor_id,value), got 600002"
        f" (original: first {MAX_ORIGINAL} of {len(raw)} bytes)"
    )
    with Ledger(settings.ledger_file) as book:
        assert sorted(e.name for e in book.entries()) == [big, after]
    assert list(settings.inbox.iterdir()) == []


def test_a_message_the_producer_refuses_fails_its_file_not_the_pass(kafka: str, tmp_path: Path) -> None:
    """produce() itself refuses a message over message.max.bytes (KafkaException, not a delivery report): the
    file is failed, not recorded and tried again next pass; the files after it still go."""
    run = uuid.uuid4().hex[:8]
    # 50,000 samples in one package (~1.5 MB): past the setting's bound, which exists to prevent exactly this,
    # so it is set without validation.
    settings = _settings(tmp_path, kafka, f"files-it-{run}").model_copy(update={"samples_per_package": 50_000})
    settings.inbox.mkdir(parents=True)
    huge_sensor, small_sensor = uuid.uuid4(), uuid.uuid4()
    t0 = (int(time.time()) - 7200) * 1_000_000
    huge, small = f"a-huge-{run}.csv", f"b-small-{run}.csv"
    (settings.inbox / huge).write_bytes(_csv([f"{t0 + i * 1000},{huge_sensor},{20 + i / 1e4}" for i in range(50_000)]))
    (settings.inbox / small).write_bytes(_csv([f"{t0 + i * 1000},{small_sensor},{i}" for i in range(5)]))
    for name in (huge, small):
        _age(settings.inbox / name)
    keys = {str(huge_sensor).encode(), str(small_sensor).encode()}
    before = ends(kafka, PACKAGES)

    pickup = Pickup(settings)
    first = pickup.run_once()
    second = pickup.run_once()
    pickup.close()

    assert [(f.name, f.outcome) for f in first.files] == [(huge, "failed"), (small, "ingested")]
    assert "refused" in first.files[0].detail
    assert "too large" in first.files[0].detail
    assert [(f.name, f.outcome) for f in second.files] == [(huge, "failed")]  # tried again, not recorded
    [(key, _)] = read_keyed(kafka, PACKAGES, before, ends(kafka, PACKAGES), keys)
    assert key == str(small_sensor).encode()
    with Ledger(settings.ledger_file) as book:
        assert [e.name for e in book.entries()] == [small]
    assert [p.name for p in settings.inbox.iterdir()] == [huge]  # a failed file stays in the inbox


@pytest.mark.parametrize(
    ("command", "code", "says"),
    [(["run", "--poll-seconds", "60"], 0, "stopped"), (["once"], 130, "stopped on request")],
)
def test_ctrl_c_lets_the_file_being_sent_finish_and_leaves_the_rest(
    kafka: str, tmp_path: Path, command: list[str], code: int, says: str
) -> None:
    """`make files` (or `files-once`) stopped with Ctrl-C: every file is either sent whole and recorded, or
    untouched in the inbox."""
    run = uuid.uuid4().hex[:8]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    t0 = (int(time.time()) - 7200) * 1_000_000
    sensors = {f"big-{run}-{k}.csv": uuid.uuid4() for k in range(5)}
    for name, sensor in sensors.items():  # 100,000 readings each: a few tenths of a second per file here
        (inbox / name).write_bytes(_csv([f"{t0 + i * 1000},{sensor},{i % 50}" for i in range(100_000)]))
        _age(inbox / name)
    env = {
        **os.environ,
        "VIGIL_FILES_DATA_DIR": str(tmp_path / "data"),
        "VIGIL_FILES_WATCH_DIR": str(inbox),
        "VIGIL_FILES_KAFKA_BOOTSTRAP": kafka,
        "VIGIL_FILES_GATEWAY_ID": f"files-it-{run}",
        "VIGIL_FILES_SAMPLES_PER_PACKAGE": "1000",
        "COLUMNS": "250",  # one line of summary caption
    }
    before = ends(kafka, PACKAGES)

    child = subprocess.Popen(
        [sys.executable, "-m", "connectors.files", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    log = []
    for line in child.stderr:  # bounded by the child: it exits at the end of its stderr at the latest
        log.append(line)
        if " picked " in line:
            child.send_signal(signal.SIGINT)
            break
    out, rest = child.communicate(timeout=120)
    log.append(rest)
    assert child.returncode == code, "".join(log)
    assert says in out

    settings = FilesSettings(data_dir=tmp_path / "data")
    with Ledger(settings.ledger_file) as book:
        recorded = {e.name for e in book.entries()}
    left = {p.name for p in inbox.iterdir()}
    assert recorded == {p.name for p in settings.done_dir.iterdir()}
    assert (len(recorded) > 0, len(left) > 0) == (True, True), "".join(log)  # stopped within the pass
    assert recorded | left == set(sensors)
    keys = {str(s).encode(): name for name, s in sensors.items()}
    sent = Counter(keys[k] for k, _ in read_keyed(kafka, PACKAGES, before, ends(kafka, PACKAGES), set(keys)))
    assert sent == dict.fromkeys(recorded, 100)  # the files recorded were sent whole; the others not at all
