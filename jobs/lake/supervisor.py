"""`make lake`'s supervisor: runs the writer as a child process and starts it again after it failed.

A writer whose micro-batch failed (MinIO or Kafka away for longer than their
clients retry, a driver out of memory) stops its query and exits; without a
supervisor the lake then stays stopped until someone runs `make lake`. A new
process rather than a new query in the old one: the failed driver's JVM may be
out of memory or gone. A restart loses and doubles nothing: Spark re-runs the
failed batch from the checkpoint with the same offsets, and every write of it
is idempotent (docs/lake.md).

Restarts back off exponentially (tenacity). A failure that repeats at once (a
batch too big for the driver, offsets gone from Kafka) needs an operator, so
when the writer fails again after `max_restarts` restarts in a row the
supervisor gives up and the status file (`make lake-status`) says why. A writer that ran for
`restart_healthy_after_seconds` before failing starts a new count, so one
failure a day never adds up to giving up.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from jobs.lake.settings import LakeSettings
from jobs.lake.status import Supervision, read_status, write_status

log = logging.getLogger("vigil.lake.supervisor")
WriterCommand = Callable[[Supervision], Sequence[str]]  # the writer's argv, told how it is supervised
REASON_CHARS = 300  # a Spark failure's text runs to pages; its first line names it


class WriterExit(Exception):
    """The writer process ended with an error; `reason` says how, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class QuickFailure(WriterExit):
    """It failed before it had run `restart_healthy_after_seconds`: counts towards giving up."""


class LateFailure(WriterExit):
    """It failed after a healthy run: restarted with a fresh count."""


def supervise(command: WriterCommand, lake: LakeSettings, status: Path, stopping: threading.Event) -> int:
    """Run the writer until `stopping` is set or it stopped by itself (0), or it failed too often in a row (1)."""
    supervision = Supervision(supervisor_pid=os.getpid())
    runs = 0

    def run_writer() -> None:
        nonlocal supervision, runs
        if stopping.is_set():
            return
        supervision, runs = replace(supervision, restarts=runs), runs + 1
        started = time.time()
        code = _run_until_exit(command(supervision), stopping)
        if stopping.is_set() or code == 0:  # a stop request, ours or one sent to the writer itself
            return
        reason = _failure_reason(code, status, started)
        supervision = replace(supervision, last_failure=reason)
        failure = LateFailure if time.time() - started >= lake.restart_healthy_after_seconds else QuickFailure
        raise failure(reason)

    def back_off(seconds: float) -> None:
        stopping.wait(seconds)  # a stop request cuts a back-off short

    def announce(state: RetryCallState) -> None:
        delay = state.next_action.sleep if state.next_action else 0.0
        _report(status, supervision, f"restart {supervision.restarts + 1} in {delay:.0f} s", delay)

    while not stopping.is_set():
        retrying = Retrying(
            retry=retry_if_exception_type(QuickFailure),
            stop=stop_after_attempt(lake.max_restarts + 1) | stop_when_event_set(stopping),
            wait=wait_exponential(multiplier=lake.restart_delay_seconds, max=lake.restart_max_delay_seconds),
            sleep=back_off,
            before_sleep=announce,
            reraise=True,
        )
        try:
            retrying(run_writer)
        except LateFailure:
            _report(status, supervision, "restarting", lake.restart_delay_seconds)
            stopping.wait(lake.restart_delay_seconds)
            continue
        except QuickFailure as failure:
            if stopping.is_set():
                return 0
            tries = lake.max_restarts + 1
            message = f"gave up after {tries} failures in a row, the last: {failure.reason}; start it with `make lake`"
            log.error("the lake writer %s", message)
            write_status(status, active=False, error=message, restarts=supervision.restarts, last_failure=None)
            return 1
        return 0
    return 0


def _run_until_exit(argv: Sequence[str], stopping: threading.Event) -> int:
    # The writer inherits stdout/stderr (the log file) and the process group, so `make down`'s signal to the
    # group reaches it directly; `stopping` covers a signal sent to the supervisor alone.
    proc = subprocess.Popen(list(argv))
    while proc.poll() is None:
        if stopping.wait(0.5):
            proc.terminate()
            break
    return proc.wait()


def _failure_reason(code: int, status: Path, started: float) -> str:
    """The writer's own error from its status file if it wrote one since it started, else its exit."""
    how = f"exit code {code}" if code > 0 else f"killed by signal {-code}"
    last = read_status(status) or {}
    error = last.get("error")
    written = last.get("updated_at", "")
    if error and written and datetime.fromisoformat(written).timestamp() >= started:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else how
        return f"{first_line[:REASON_CHARS]} ({how})"
    return how


def _report(status: Path, supervision: Supervision, what: str, delay: float) -> None:
    log.warning("the lake writer failed (%s): %s", supervision.last_failure, what)
    write_status(
        status,
        active=False,
        error=f"{supervision.last_failure}; {what}",
        restarts=supervision.restarts,
        last_failure=supervision.last_failure,
        restart_in_s=round(delay, 1),
    )
