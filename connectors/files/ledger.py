"""The ledger of processed files: a small sqlite file that survives restarts.

A file is identified by (name, size, sha256): the same bytes under the same name are
never ingested twice, whichever source (local inbox or FTP) they come from. A row is
written only once every package and dead letter of the file was acknowledged by Kafka.
The listing facts (source, mtime) are kept too, so an unchanged file that is left in
place (FTP, or `after=leave`) is skipped without reading or downloading it again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

Status = Literal["ingested", "rejected"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    mtime REAL,
    status TEXT NOT NULL,
    packages INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    bad_rows INTEGER NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (name, size, sha256)
)
"""


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    sha256: str
    source: str
    mtime: float | None
    status: Status
    packages: int
    samples: int
    bad_rows: int
    processed_at: datetime


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        with self._db:
            self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def has(self, name: str, size: int, sha256: str) -> bool:
        query = "SELECT 1 FROM files WHERE name = ? AND size = ? AND sha256 = ?"
        return self._db.execute(query, (name, size, sha256)).fetchone() is not None

    def has_listing(self, source: str, name: str, size: int, mtime: float | None) -> bool:
        """Whether this exact listing (same source, name, size and mtime) was already processed."""
        if mtime is None:
            return False
        query = "SELECT 1 FROM files WHERE source = ? AND name = ? AND size = ? AND mtime = ?"
        return self._db.execute(query, (source, name, size, mtime)).fetchone() is not None

    def record(self, entry: Entry) -> None:
        with self._db:  # one transaction: committed (durable) when the block ends
            self._db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.name,
                    entry.size,
                    entry.sha256,
                    entry.source,
                    entry.mtime,
                    entry.status,
                    entry.packages,
                    entry.samples,
                    entry.bad_rows,
                    entry.processed_at.astimezone(UTC).isoformat(),
                ),
            )

    def entries(self, limit: int | None = None) -> list[Entry]:
        query = "SELECT * FROM files ORDER BY processed_at DESC, name"
        rows = self._db.execute(query + (" LIMIT ?" if limit else ""), (limit,) if limit else ()).fetchall()
        return [Entry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], datetime.fromisoformat(r[9])) for r in rows]
