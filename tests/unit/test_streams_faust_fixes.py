"""streams/faust_fixes.py: the two patches to Faust's flow control and offset commit, on plain objects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.faust_fixes import resume_without_dropping, settle_deliveries_before_commit

pytestmark = pytest.mark.unit


class _Flow:
    def __init__(self, active: bool) -> None:
        self.active, self.cleared = active, 0

    def is_active(self) -> bool:
        return self.active

    def resume(self) -> None:
        self.cleared += 1  # Faust's resume clears every stream queue
        self.active = True


def test_resume_of_an_active_flow_keeps_the_queued_events() -> None:
    suspended, running = _Flow(active=False), _Flow(active=True)
    for flow in (suspended, running):
        resume_without_dropping(flow)
        flow.resume()
    assert (suspended.cleared, running.cleared) == (1, 0)


def test_a_commit_waits_for_delivery_callbacks_already_due() -> None:
    order: list[str] = []

    class Consumer:
        async def _commit(self, offsets: Any) -> bool:
            order.append("commit")
            return True

    settle_deliveries_before_commit(Consumer)

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        # A failed delivery as Faust completes it: aiokafka's future, then Faust's FutureMessage, then our check.
        loop.call_soon(lambda: loop.call_soon(lambda: loop.call_soon(lambda: order.append("callback"))))
        return await Consumer()._commit({})

    assert asyncio.run(scenario()) is True
    assert order == ["callback", "commit"]
