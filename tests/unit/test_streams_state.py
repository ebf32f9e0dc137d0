"""streams.state.Checkpointed: state kept in memory, written to its table at most once per interval per key."""

from __future__ import annotations

from typing import Any

import pytest

from streams.state import Checkpointed

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _state(table: dict[str, Any], clock: Clock) -> Checkpointed[int]:
    return Checkpointed(table, lambda raw: 0 if raw is None else int(raw["n"]), lambda n: {"n": n}, 1.0, clock)


def test_writes_the_first_value_then_at_most_once_per_interval_per_key() -> None:
    table: dict[str, Any] = {}
    clock = Clock()
    state = _state(table, clock)
    state.put("a", 1)
    assert table == {"a": {"n": 1}}
    clock.now += 0.5
    state.put("a", 2)
    state.put("b", 7)  # another key has its own interval
    assert table == {"a": {"n": 1}, "b": {"n": 7}}
    assert state.get("a") == 2  # the live value, not the checkpoint
    clock.now += 0.5
    state.put("a", 3)
    assert table["a"] == {"n": 3}


def test_an_urgent_value_is_written_at_once() -> None:
    table: dict[str, Any] = {}
    clock = Clock()
    state = _state(table, clock)
    state.put("a", 1)
    state.put("a", 2, now=True)
    assert table["a"] == {"n": 2}


def test_reads_the_table_once_and_again_after_forget() -> None:
    table: dict[str, Any] = {"a": {"n": 5}}
    clock = Clock()
    state = _state(table, clock)
    assert state.get("a") == 5
    assert state.get("missing") == 0
    table["a"] = {"n": 9}  # e.g. recovered from the changelog after a rebalance
    assert state.get("a") == 5
    state.forget()
    assert state.get("a") == 9
