"""Clock reports: how each partition tells the gateway's clock agent which offset it applied.

Pure: `streams/app.py` sends and reads them on `<app id>-clock-reports`, keyed by gateway.

A gateway's sensors hash to every partition, so its packages may be handled by several workers; the
clock-skew rule needs one owner per gateway to give one open and one close per episode. Reporting every
package would double the worker's sends, so a partition reports at most every `interval_s`, and at once
when its offset crosses the rule's limit (the rule sees every change of side without waiting).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson


@dataclass(frozen=True, slots=True)
class ClockReport:
    """The offset (ms) a partition applied to a package of the gateway, and that package's window (µs)."""

    offset_ms: float
    window_us: tuple[int, int]

    def to_bytes(self) -> bytes:
        return orjson.dumps({"offset_ms": self.offset_ms, "window_us": list(self.window_us)})

    @classmethod
    def from_bytes(cls, raw: bytes) -> ClockReport:
        """Raises ValueError (orjson's JSONDecodeError is one) for anything but a report."""
        data = orjson.loads(raw)
        try:
            start, end = (int(v) for v in data["window_us"])
            return cls(float(data["offset_ms"]), (start, end))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a clock report: {exc!r}") from exc


@dataclass
class ReportGate:
    """Per key (gateway/partition): is a report due? At most every `interval_s`, or when `breached` flips."""

    interval_s: float
    _last: dict[str, tuple[float, bool]] = field(default_factory=dict)

    def due(self, key: str, breached: bool, now: float) -> bool:
        last = self._last.get(key)
        if last is not None and last[1] == breached and now - last[0] < self.interval_s:
            return False
        self._last[key] = (now, breached)
        return True

    def forget(self) -> None:
        """After a rebalance: the next package of every partition reports at once."""
        self._last.clear()
