"""A send the broker refused or never acknowledged ends the worker before the input's offset is committed.

Faust (0.15.3) only logs a failed send (`_on_published error`) and then commits the offset of the input that
produced it, so the record was lost for good: an integration test saw a refused clean record and its package
committed (tests/integration/test_streams_send_failure.py). Exiting instead makes the worker replay that input
from the last commit when it is started again; streams/faust_fixes.py makes sure the exit comes first.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from typing import Any, Final, cast

log = logging.getLogger(__name__)

EXIT_SEND_FAILED: Final = 75  # EX_TEMPFAIL: try again later (`make streams` again, or the operator's restart)


def exit_before_commit(topic: str, error: BaseException) -> None:
    log.critical("send to %s failed (%r): exiting before the input's offset is committed; it is replayed", topic, error)
    logging.shutdown()
    os._exit(EXIT_SEND_FAILED)  # not SystemExit: Faust's shutdown would commit the offsets on its way out


def watch(delivery: Awaitable[Any], topic: str) -> None:
    """Call `exit_before_commit` (looked up at that time, so a test can replace it) if `delivery` fails."""

    def check(done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and (error := done.exception()) is not None:
            exit_before_commit(topic, error)

    cast("asyncio.Future[Any]", delivery).add_done_callback(check)
