"""How `jobs.spark_session` starts the driver JVM, checked on a plain child process (no JVM, no services)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from types import FrameType

import pytest

from jobs.spark_session import _jvm_ignoring_sigterm

pytestmark = pytest.mark.unit


def _ignored_signals(pid: int) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("SigIgn:"))
    return int(line.split()[1], 16)


def test_a_process_started_inside_ignores_sigterm_and_a_sigterm_meanwhile_reaches_us_after() -> None:
    received: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with _jvm_ignoring_sigterm():
            child = subprocess.Popen(["sleep", "30"])  # stands in for spark-submit's JVM
            os.kill(os.getpid(), signal.SIGTERM)  # a stop sent while the JVM starts
            assert received == []
        assert received == [signal.SIGTERM]  # delivered once the block ends, not lost
        try:
            assert _ignored_signals(child.pid) & (1 << (signal.SIGTERM - 1))
            child.terminate()  # ignored: the child lives on
            with pytest.raises(subprocess.TimeoutExpired):
                child.wait(0.5)
        finally:
            child.kill()
            child.wait()
        assert signal.getsignal(signal.SIGTERM) is handler  # our own handler is back
        started_after = subprocess.Popen(["sleep", "30"])
        try:
            assert not _ignored_signals(started_after.pid) & (1 << (signal.SIGTERM - 1))
        finally:
            started_after.kill()
            started_after.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
