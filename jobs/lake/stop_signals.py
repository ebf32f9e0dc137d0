"""SIGTERM and SIGINT ask a lake process (supervisor or writer) to stop, by setting a `threading.Event`."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def set_on_stop_signals(stopping: threading.Event) -> None:
    """SIGTERM and SIGINT set `stopping`, from a short-lived thread rather than from the handler itself.

    Python runs a handler in the main thread between two bytecodes, possibly while that thread holds the
    event's internal lock (a plain, non-reentrant one) inside `stopping.wait()`. A handler calling
    `stopping.set()` then waits for that lock forever. `make down` makes this likely: its SIGTERM to the
    group reaches the writer, and the supervisor forwards a second one just as the writer wakes from the
    first; a writer hung that way in CI (and 1 to 14 of 40 processes in tests/unit/test_lake_stop_signals.py).
    """

    def handler(signum: int, _: FrameType | None) -> None:
        name = f"stop-on-{signal.Signals(signum).name}"
        threading.Thread(target=stopping.set, name=name, daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
