"""Expiry of the dedupe table: package ids older than the horizon are deleted, so the table stays bounded.

The `seen-packages` table holds one entry per accepted package id, `{"ms", "partition", "offset"}`
(`ms`: broker append time). An entry past the horizon no longer makes a duplicate, but it would stay
in memory and in the compacted changelog forever. Deletes are changelogged to the partition of the
event being handled (Faust tables are partitioned like their input), so a partition's entries are
deleted while handling that partition's events: the horizon is measured in that partition's broker
time, and a worker that gets the partition after a rebalance or restart indexes the recovered
entries first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, MutableMapping
from typing import Any, Final

DELETES_PER_EVENT: Final = 100  # spreads a backlog of expired ids over events instead of stalling one


class SeenExpiry:
    """Per input partition, the dedupe table's keys in acceptance order."""

    def __init__(self, table: MutableMapping[str, Any], horizon_ms: float) -> None:
        self._table, self._horizon_ms = table, horizon_ms
        self._queues: dict[int, deque[tuple[float, str]]] = {}

    def accepted(self, partition: int, ms: float, key: str) -> None:
        self._queue(partition).append((ms, key))

    def purge(self, partition: int, now_ms: float, limit: int = DELETES_PER_EVENT) -> int:
        """Delete up to `limit` of the partition's entries older than the horizon; return how many."""
        queue, deleted = self._queue(partition), 0
        while queue and deleted < limit and queue[0][0] <= now_ms - self._horizon_ms:
            ms, key = queue.popleft()
            entry = self._table.get(key)
            # Only the entry this queue item recorded: the id may have been accepted again since.
            if entry is not None and entry["ms"] == ms and entry["partition"] == partition:
                del self._table[key]
                deleted += 1
        return deleted

    def forget(self) -> None:
        """After a rebalance: the partitions' entries are re-indexed from the recovered table when next used."""
        self._queues.clear()

    def _queue(self, partition: int) -> deque[tuple[float, str]]:
        if partition not in self._queues:
            self._queues[partition] = deque(sorted(self._entries(partition)))
        return self._queues[partition]

    def _entries(self, partition: int) -> Iterable[tuple[float, str]]:
        for key, entry in self._table.items():
            if entry is not None and entry["partition"] == partition:
                yield entry["ms"], key
