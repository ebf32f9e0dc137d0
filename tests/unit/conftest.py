"""Fixtures shared by unit test modules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.unit.streams_agents_harness import Harness


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The stream agents' test harness; imported here only when a test asks for it (it builds the Faust app)."""
    from tests.unit.streams_agents_harness import installed

    yield from installed(monkeypatch)
