"""streams.dedupe.SeenExpiry: dedupe entries older than the horizon are deleted, per partition, in order."""

from __future__ import annotations

from typing import Any

import pytest

from streams.dedupe import SeenExpiry

pytestmark = pytest.mark.unit


def _entry(ms: float, partition: int) -> dict[str, Any]:
    return {"ms": ms, "partition": partition, "offset": 0}


def test_deletes_only_the_partitions_expired_entries_oldest_first() -> None:
    table = {"a": _entry(0, 1), "b": _entry(500, 1), "c": _entry(100, 2)}  # recovered from a changelog
    expiry = SeenExpiry(table, horizon_ms=1000)
    expiry.accepted(1, 1600, "d")
    table["d"] = _entry(1600, 1)
    assert expiry.purge(1, now_ms=1600) == 2
    assert sorted(table) == ["c", "d"]  # partition 2 is left to its own events
    assert expiry.purge(2, now_ms=1600) == 1
    assert sorted(table) == ["d"]


def test_an_id_accepted_again_is_not_deleted_by_its_old_record() -> None:
    table = {"a": _entry(0, 1)}
    expiry = SeenExpiry(table, horizon_ms=1000)
    expiry.accepted(1, 2000, "a")
    table["a"] = _entry(2000, 1)
    assert expiry.purge(1, now_ms=2500) == 0
    assert table["a"]["ms"] == 2000


def test_deletes_are_spread_over_events_and_reindexed_after_forget() -> None:
    table = {str(i): _entry(i, 0) for i in range(250)}
    expiry = SeenExpiry(table, horizon_ms=10)
    assert [expiry.purge(0, now_ms=10_000, limit=100) for _ in range(4)] == [100, 100, 50, 0]
    table["x"] = _entry(5, 0)  # written by another worker before a rebalance
    expiry.forget()
    assert expiry.purge(0, now_ms=10_000) == 1
    assert table == {}
