"""Where dropped files come from: a local directory, or a directory on an FTP server (stdlib ftplib).

A source lists (`scan`) candidate files (name, size, mtime), hands one over as a local path
(`fetch`; FTP downloads into a staging folder, `release` removes the copy) and is told
when a file is done (`finish`: a local file is moved to done/ or rejected/, or left).
FTP files are left on the server; the ledger keeps them from being ingested twice.
"""

from __future__ import annotations

import ftplib
import logging
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from connectors.files.parse import layout_of

log = logging.getLogger(__name__)

Outcome = Literal["ingested", "rejected", "skipped"]


@dataclass(frozen=True, order=True)
class Listing:
    name: str
    size: int
    mtime: float | None  # seconds since the epoch (UTC); None when the server does not say


class Source(Protocol):
    label: str

    def scan(self) -> list[Listing]: ...
    def fetch(self, item: Listing) -> Path: ...
    def release(self, item: Listing, path: Path) -> None: ...
    def finish(self, item: Listing, outcome: Outcome) -> None: ...
    def close(self) -> None: ...


@dataclass
class Settle:
    """A file is ready when it is unchanged (size, mtime) since the previous poll, or, on first sight,
    when its mtime is at least `seconds` old. A file that changed between two polls is still being written."""

    seconds: float
    _seen: dict[tuple[str, str], tuple[int, float | None]] = field(default_factory=dict)

    def ready(self, source: str, item: Listing, now: float) -> bool:
        key, state = (source, item.name), (item.size, item.mtime)
        previous = self._seen.get(key)
        self._seen[key] = state
        if previous is not None:
            return previous == state
        return self.seconds == 0 or (item.mtime is not None and now - item.mtime >= self.seconds)

    def forget_missing(self, source: str, present: set[str]) -> None:
        for key in [k for k in self._seen if k[0] == source and k[1] not in present]:
            del self._seen[key]


def _unique(folder: Path, name: str) -> Path:
    target = folder / name
    if target.exists():
        path = Path(name)
        target = folder / f"{path.stem}.{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}{path.suffix}"
    return target


class LocalSource:
    def __init__(self, directory: Path, after: Literal["move", "leave"], done: Path, rejected: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.after, self.done, self.rejected = directory, after, done, rejected
        self.label = f"local:{directory}"

    def scan(self) -> list[Listing]:
        out = []
        for path in sorted(self.directory.iterdir()):
            if layout_of(path.name) is None:
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # removed while listing
            if path.is_file():
                out.append(Listing(path.name, stat.st_size, stat.st_mtime))
        return out

    def fetch(self, item: Listing) -> Path:
        return self.directory / item.name

    def release(self, item: Listing, path: Path) -> None:
        pass

    def finish(self, item: Listing, outcome: Outcome) -> None:
        if self.after == "leave":
            return
        folder = self.rejected if outcome == "rejected" else self.done
        folder.mkdir(parents=True, exist_ok=True)
        target = _unique(folder, item.name)
        shutil.move(self.directory / item.name, target)
        log.info("moved %s to %s", item.name, target)

    def close(self) -> None:
        pass


def _mlsd_time(text: str | None) -> float | None:
    """An MLSD `modify` / MDTM time (YYYYMMDDHHMMSS[.sss], UTC) in epoch seconds; None if absent or not that
    (servers send odd ones): the file then waits one unchanged poll to settle, as without a time."""
    if not text:
        return None
    try:
        moment = datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        fraction = float("0" + text[14:]) if text[14:].startswith(".") else 0.0
    except ValueError:
        log.warning("ignoring FTP modification time %r: not YYYYMMDDHHMMSS[.sss]", text[:40])
        return None
    return moment.timestamp() + fraction


def _mlsd_size(text: str | None) -> int | None:
    """An MLSD `size` fact in bytes; None if absent or not a plain count."""
    if text is None:
        return None
    if text.isascii() and text.isdigit():
        return int(text)
    log.warning("ignoring FTP size %r: not a byte count", text[:40])
    return None


class FtpSource:
    """Polls one directory of an FTP server; one connection per pass (opened on first use, closed by `close`)."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        directory: str,
        staging: Path,
        timeout_s: float = 30.0,
    ) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.directory, self.staging, self.timeout_s = directory, staging, timeout_s
        self.label = f"ftp://{host}:{port}/{directory.strip('/')}"
        self._ftp: ftplib.FTP | None = None

    def _conn(self) -> ftplib.FTP:
        if self._ftp is None:
            ftp = ftplib.FTP(timeout=self.timeout_s)  # noqa: S321 - plain FTP is what the field devices speak
            ftp.connect(self.host, self.port)
            ftp.login(self.user, self.password)
            ftp.cwd(self.directory)
            ftp.voidcmd("TYPE I")  # binary: SIZE and downloads byte for byte
            self._ftp = ftp
        return self._ftp

    def scan(self) -> list[Listing]:
        ftp = self._conn()
        try:
            facts = list(ftp.mlsd(facts=["type", "size", "modify"]))
        except ftplib.error_perm:  # no MLSD (RFC 3659): NLST, then SIZE and MDTM per file
            return self._list_plain(ftp)
        ftp.voidcmd("TYPE I")  # ftplib lists in ASCII mode; servers such as ProFTPD or pyftpdlib refuse SIZE in it
        out = []
        for name, f in facts:
            if f.get("type") != "file" or layout_of(name) is None:
                continue
            size = _mlsd_size(f.get("size"))
            if size is None:  # missing or odd: ask SIZE, as the NLST path does
                size = self._size(ftp, name)
            out.append(Listing(name, size or 0, _mlsd_time(f.get("modify"))))
        return sorted(out)

    @staticmethod
    def _size(ftp: ftplib.FTP, name: str) -> int | None:
        """SIZE of `name`; None if the server refuses it (a directory, no SIZE) or answers with no number."""
        try:
            return ftp.size(name)
        except (ftplib.error_perm, ValueError):
            return None

    def _list_plain(self, ftp: ftplib.FTP) -> list[Listing]:
        out = []
        names = ftp.nlst()
        ftp.voidcmd("TYPE I")  # back from NLST's ASCII mode: a refused SIZE would read as "a directory"
        for name in sorted(names):
            name = name.rsplit("/", 1)[-1]
            if layout_of(name) is None:
                continue
            try:
                size = ftp.size(name)
            except ftplib.error_perm:
                continue  # a directory
            except ValueError:  # a SIZE answer that is no number: the size is unknown, as without one
                size = None
            try:
                mtime = _mlsd_time(ftp.voidcmd(f"MDTM {name}").split()[-1])
            except ftplib.error_perm:
                mtime = None
            out.append(Listing(name, size or 0, mtime))
        return out

    def fetch(self, item: Listing) -> Path:
        self.staging.mkdir(parents=True, exist_ok=True)
        path = self.staging / f"{uuid.uuid4().hex}-{item.name}"
        with path.open("wb") as handle:
            self._conn().retrbinary(f"RETR {item.name}", handle.write)
        return path

    def release(self, item: Listing, path: Path) -> None:
        path.unlink(missing_ok=True)

    def finish(self, item: Listing, outcome: Outcome) -> None:
        pass

    def close(self) -> None:
        if self._ftp is not None:
            ftp, self._ftp = self._ftp, None
            try:
                ftp.quit()
            except (OSError, EOFError, ftplib.Error):
                ftp.close()
