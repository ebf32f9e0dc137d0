"""Workarounds for Faust defects the stream worker would otherwise hit; recheck each on a Faust upgrade."""

from __future__ import annotations

import asyncio
from typing import Any

# Loop turns from a delivery's completion to its last callback: aiokafka's future -> Faust's FutureMessage
# (`_on_published`) -> the callbacks on that FutureMessage (streams/app.py); one more for good measure.
_CALLBACK_HOPS = 4


def resume_without_dropping(flow_control: Any) -> None:
    """Make `flow_control.resume()` clear the stream queues only when flow was suspended.

    Faust (0.15.3) clears every stream queue on each resume, to drop events of partitions revoked while
    suspended. Its recovery resumes twice: once to read the changelogs and again after seeking the stream
    partitions, when events of the assigned partitions are already queued and marked as read. The second
    clear dropped them for good: a restarted worker skipped 1-2 packages per partition in about one
    restart in ten (tests/integration/test_streams_restart.py). A resume of an active flow now keeps them.
    """
    resume = flow_control.resume

    def resume_unless_active() -> None:
        if not flow_control.is_active():
            resume()

    flow_control.resume = resume_unless_active


def settle_deliveries_before_commit(consumer_class: Any) -> None:
    """Make the consumer's offset commit first let already-due delivery callbacks run.

    Faust (0.15.3) flushes the producer and then commits the offsets even when a send failed: a refused or
    timed-out send is only logged (`_on_published error`), and its input was lost for good (an integration
    test saw a refused clean record and a committed package). streams/app.py exits the worker from the failed
    delivery's callback, but the flush can return before that callback has run; with these loop turns first,
    it runs, and exits, before the commit.
    """
    commit = consumer_class._commit

    async def settle_then_commit(self: Any, offsets: Any) -> bool:
        for _ in range(_CALLBACK_HOPS):
            await asyncio.sleep(0)
        result: bool = await commit(self, offsets)
        return result

    consumer_class._commit = settle_then_commit
