"""Per-key state kept in Faust tables, as plain JSON (tables replicate it to changelog topics)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, MutableMapping
from dataclasses import asdict
from typing import Any, Generic, TypeVar

import numpy as np

from streams.alerts import Episode, SensorAlertState
from streams.clock import SkewWindow
from streams.pipeline import SensorState
from streams.quality import HampelTail

S = TypeVar("S")


def sensor_state_to_json(state: SensorState) -> dict[str, Any]:
    alerts = state.alerts
    return {
        "tail": {"values": list(state.tail.values), "last_t_us": state.tail.last_t_us},
        "alerts": {
            "episodes": [[name, asdict(episode)] for name, episode in alerts.episodes],
            "last_mean": alerts.last_mean,
            "last_end_us": alerts.last_end_us,
        },
    }


def sensor_state_from_json(data: dict[str, Any] | None) -> SensorState:
    if not data:
        return SensorState()
    tail = data.get("tail") or {}
    alerts = data.get("alerts") or {}
    return SensorState(
        tail=HampelTail(values=tuple(tail.get("values", ())), last_t_us=tail.get("last_t_us")),
        alerts=SensorAlertState(
            episodes=tuple((name, Episode(**episode)) for name, episode in alerts.get("episodes", ())),
            last_mean=alerts.get("last_mean"),
            last_end_us=alerts.get("last_end_us"),
        ),
    )


def skew_window_to_json(window: SkewWindow) -> dict[str, Any]:
    """A gateway's skew window on one partition, as its `gateway-clocks` table value."""
    # By hand: dataclasses.asdict deep-copies every float of the window, which profiled as the worker's hottest path.
    return {"window": {"append_ms": window.append_ms.tolist(), "gap_ms": window.gap_ms.tolist()}}


def skew_window_from_json(data: dict[str, Any] | None) -> SkewWindow:
    window = (data or {}).get("window") or {}
    return SkewWindow(
        np.asarray(window.get("append_ms", ()), dtype=np.float64),
        np.asarray(window.get("gap_ms", ()), dtype=np.float64),
    )


class Checkpointed(Generic[S]):
    """A table's latest value per key, parsed, in memory; written back at most every `interval_s` per key.

    For state that is an estimate, not a record: every write is a changelog message (Faust serialises it
    and sends it through its producer, ~0.2 ms), and a gateway's clock window (up to 512 points) can change
    with every package. A restarted worker resumes from the last checkpoint, missing at most `interval_s`
    of observations. The first value of a key is written at once. After a rebalance the table, recovered
    from its changelog, is the truth again (`forget`).
    """

    def __init__(
        self,
        table: MutableMapping[str, Any],
        load: Callable[[Any], S],
        dump: Callable[[S], Any],
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table, self._load, self._dump = table, load, dump
        self._interval_s, self._clock = interval_s, clock
        self._latest: dict[str, S] = {}
        self._written_at: dict[str, float] = {}

    def get(self, key: str) -> S:
        if key not in self._latest:
            self._latest[key] = self._load(self._table.get(key))
        return self._latest[key]

    def put(self, key: str, value: S, *, now: bool = False) -> None:
        """Keep `value`; write it if the key's last write is `interval_s` old, or `now` (e.g. an alert changed)."""
        self._latest[key] = value
        at = self._clock()
        if now or at - self._written_at.get(key, -math.inf) >= self._interval_s:
            self._table[key] = self._dump(value)
            self._written_at[key] = at

    def forget(self) -> None:
        self._latest.clear()
        self._written_at.clear()
