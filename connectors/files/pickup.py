"""One pass of the pickup: list -> skip known or unsettled -> parse -> produce -> wait for acks -> record.

Exactly once per file: a file enters the ledger only after Kafka acknowledged every
package and dead letter it produced (idempotent producer, acks=all). A crash between
the acks and the ledger write re-sends the file on restart; its packages then carry
the same deterministic ids (replay.py) and the stream's dedupe drops them.
"""

from __future__ import annotations

import ftplib
import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from connectors.files.kafka import DEADLETTER_TOPIC, PACKAGES_TOPIC, KafkaSink, Sink
from connectors.files.ledger import Entry, Ledger
from connectors.files.parse import BadRecord, FileError, parse_file
from connectors.files.settings import FilesSettings
from connectors.files.sources import FtpSource, Listing, LocalSource, Settle, Source
from connectors.gateway.replay import packages
from contracts import DeadLetter, ReasonCode
from contracts import avro as avro_codec

log = logging.getLogger(__name__)

STAGE: Final = "files"
# Bytes of an unusable file, or of a bad row, kept in its dead letter: Kafka caps a message at 1 MiB (the
# producer at 1,000,000 bytes), and a letter over it would be refused and fail its file on every pass.
MAX_ORIGINAL: Final = 256 * 1024
MAX_REASON: Final = 2048  # reasons quote bad values cut short already; this bounds any other (an error's text)

Outcome = Literal["ingested", "rejected", "duplicate", "failed"]


@dataclass(frozen=True)
class FileResult:
    source: str
    name: str
    outcome: Outcome
    packages: int = 0
    samples: int = 0
    bad_rows: int = 0
    detail: str = ""


@dataclass
class Summary:
    files: list[FileResult] = field(default_factory=list)
    waiting: int = 0  # still being written (not settled)
    known: int = 0  # listing already in the ledger: skipped without reading
    stopped: bool = False  # asked to stop: the pass ended after the file it was on; the rest waits for a later run

    def count(self, outcome: Outcome) -> int:
        return Counter(f.outcome for f in self.files)[outcome]

    @property
    def packages(self) -> int:
        return sum(f.packages for f in self.files)

    @property
    def bad_rows(self) -> int:
        return sum(f.bad_rows for f in self.files)


def default_sources(settings: FilesSettings) -> list[Source]:
    sources: list[Source] = [LocalSource(settings.inbox, settings.after, settings.done_dir, settings.rejected_dir)]
    if settings.ftp_host:
        sources.append(
            FtpSource(
                settings.ftp_host,
                settings.ftp_port,
                settings.ftp_user,
                settings.ftp_password.get_secret_value(),
                settings.ftp_dir,
                settings.staging_dir,
                settings.ftp_timeout_s,
            )
        )
    return sources


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _time(mtime: float | None) -> datetime | None:
    return datetime.fromtimestamp(mtime, tz=UTC) if mtime is not None else None


def _letter(name: str, field: str, detail: str, original: bytes, gateway_id: str, mtime: float | None) -> DeadLetter:
    """A `bad_row` dead letter of dropped file `name` (no Kafka position: partition and offset -1)."""
    return DeadLetter(
        reason=ReasonCode.BAD_ROW,
        field=field,
        detail=detail,
        stage=STAGE,
        original=original,
        source_topic=f"file:{name}",
        source_partition=-1,
        source_offset=-1,
        source_timestamp=_time(mtime),
        rejected_at=datetime.now(UTC),
        gateway_id=gateway_id,
    )


def _cut(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def _kept(original: bytes, size: int) -> str:
    return "" if len(original) == size else f" (original: first {len(original)} of {size} bytes)"


def bad_row_letter(name: str, layout: str, bad: BadRecord, gateway_id: str, mtime: float | None) -> DeadLetter:
    where = f"{'line' if layout == 'csv' else 'row'} {bad.row.line}"
    lines = f"lines {bad.row.line}-{bad.last_line}" if bad.last_line > bad.row.line else where
    original = bad.raw[:MAX_ORIGINAL]
    detail = f"file {name} {lines}: {_cut(bad.row.reason)}{_kept(original, len(bad.raw))}"
    return _letter(name, where, detail, original, gateway_id, mtime)


def file_letter(name: str, path: Path, reason: str, gateway_id: str, mtime: float | None) -> DeadLetter:
    size = path.stat().st_size
    with path.open("rb") as handle:
        original = handle.read(MAX_ORIGINAL)
    detail = f"file {name} unusable: {_cut(reason)}{_kept(original, size)}"
    return _letter(name, "file", detail, original, gateway_id, mtime)


class Pickup:
    """Holds the producer, the ledger and the settle state across passes; `run_once` is one pass."""

    def __init__(
        self,
        settings: FilesSettings,
        *,
        sink: Sink | None = None,
        ledger: Ledger | None = None,
        sources: list[Source] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sink = sink if sink is not None else KafkaSink(settings)
        self.ledger = ledger if ledger is not None else Ledger(settings.ledger_file)
        self.sources = sources if sources is not None else default_sources(settings)
        self.settle = Settle(settings.settle_seconds)
        self.clock = clock

    def close(self) -> None:
        for source in self.sources:
            source.close()
        self.sink.close()
        self.ledger.close()

    def run_once(self, stopping: threading.Event | None = None) -> Summary:
        """One pass over every source. Once `stopping` is set, the pass finishes the file it is on (sent,
        acknowledged, recorded) and takes no other: a file is never left half sent."""
        summary = Summary()
        for source in self.sources:
            try:
                self._scan(source, summary, stopping)
            except (OSError, EOFError, ftplib.Error) as exc:
                log.error("source %s failed, retrying next pass: %s", source.label, exc)
            finally:
                source.close()
        return summary

    def _scan(self, source: Source, summary: Summary, stopping: threading.Event | None) -> None:
        if summary.stopped:
            return
        items = source.scan()
        self.settle.forget_missing(source.label, {i.name for i in items})
        now = self.clock()
        for item in items:
            if stopping is not None and stopping.is_set():
                log.info("stopping: %s and the files after it in %s wait for the next run", item.name, source.label)
                summary.stopped = True
                return
            if self.ledger.has_listing(source.label, item.name, item.size, item.mtime):
                log.debug("skip %s from %s: already in the ledger", item.name, source.label)
                summary.known += 1
                source.finish(item, "skipped")
                continue
            if not self.settle.ready(source.label, item, now):
                log.info("wait for %s from %s: may still be written (%d bytes)", item.name, source.label, item.size)
                summary.waiting += 1
                continue
            summary.files.append(self._process(source, item))

    def _process(self, source: Source, item: Listing) -> FileResult:
        log.info("picked %s from %s (%d bytes)", item.name, source.label, item.size)
        path = source.fetch(item)
        try:
            size, sha = path.stat().st_size, sha256_of(path)
            if self.ledger.has(item.name, size, sha):
                log.info("skip %s: same name, size and sha256 already ingested", item.name)
                source.finish(item, "skipped")
                return FileResult(source.label, item.name, "duplicate")
            result = self._send(source, item, path)
            if result.outcome != "failed":
                self.ledger.record(
                    Entry(
                        item.name,
                        size,
                        sha,
                        source.label,
                        item.mtime,
                        "ingested" if result.outcome == "ingested" else "rejected",
                        result.packages,
                        result.samples,
                        result.bad_rows,
                        datetime.now(UTC),
                    )
                )
                source.finish(item, "ingested" if result.outcome == "ingested" else "rejected")
            return result
        finally:
            source.release(item, path)

    def _send(self, source: Source, item: Listing, path: Path) -> FileResult:
        gateway = self.settings.gateway_id
        try:
            parsed = parse_file(path, item.name)
            outgoing = list(packages(parsed.readings, self.settings.samples_per_package, gateway))
        except (FileError, ValueError, OverflowError) as exc:  # ValueError covers pydantic's ValidationError
            log.error("rejected %s from %s: %s", item.name, source.label, exc)
            letter = file_letter(item.name, path, str(exc), gateway, item.mtime)
            self.sink.send(DEADLETTER_TOPIC, item.name.encode(), avro_codec.encode(letter))
            if errors := self.sink.wait():
                return self._failed(source, item, errors)
            return FileResult(source.label, item.name, "rejected", detail=str(exc))
        for message in outgoing:
            self.sink.send(PACKAGES_TOPIC, message.key, message.value)
        for bad in parsed.bad:
            letter = bad_row_letter(item.name, parsed.layout, bad, gateway, item.mtime)
            log.warning("bad row to %s: %s", DEADLETTER_TOPIC, letter.detail)
            self.sink.send(DEADLETTER_TOPIC, item.name.encode(), avro_codec.encode(letter))
        if errors := self.sink.wait():
            return self._failed(source, item, errors)
        result = FileResult(source.label, item.name, "ingested", len(outgoing), parsed.readings.count, len(parsed.bad))
        log.info(
            "ingested %s from %s: %d readings of %d sensors in %d packages, %d bad rows",
            item.name,
            source.label,
            result.samples,
            len(parsed.readings.by_sensor),
            result.packages,
            result.bad_rows,
        )
        return result

    def _failed(self, source: Source, item: Listing, errors: list[str]) -> FileResult:
        log.error("%s from %s not acknowledged, retrying next pass: %s", item.name, source.label, errors[:3])
        return FileResult(source.label, item.name, "failed", detail="; ".join(errors[:3]))
