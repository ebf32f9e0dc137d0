"""SIGTERM and SIGINT ask one of our processes (lake supervisor or writer, file pickup) to stop, by setting a
`threading.Event` its loop checks between units of work."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def set_on_stop_signals(stopping: threading.Event, *, second_ctrl_c_aborts: bool = False) -> None:
    """SIGTERM and SIGINT set `stopping`, from a short-lived thread rather than from the handler itself.

    Python runs a handler in the main thread between two bytecodes, possibly while that thread holds the
    event's internal lock (a plain, non-reentrant one) inside `stopping.wait()`. A handler calling
    `stopping.set()` then waits for that lock forever. `make down` makes this likely: its SIGTERM to the
    group reaches the writer, and the supervisor forwards a second one just as the writer wakes from the
    first; a writer hung that way in CI (and 1 to 14 of 40 processes in tests/unit/test_stop_signals.py).

    With `second_ctrl_c_aborts`, a SIGINT after the first stop signal raises KeyboardInterrupt in the main
    thread: an operator who pressed Ctrl-C again does not want to wait for the current unit of work.
    """

    received: list[int] = []  # not stopping.is_set(): the thread setting it may not have run yet

    def handler(signum: int, _: FrameType | None) -> None:
        if second_ctrl_c_aborts and signum == signal.SIGINT and received:
            raise KeyboardInterrupt
        received.append(signum)
        name = f"stop-on-{signal.Signals(signum).name}"
        threading.Thread(target=stopping.set, name=name, daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
