"""The one error root of `streams`, and the rejection every stage may return instead of a result."""

from __future__ import annotations

from dataclasses import dataclass

from contracts import ReasonCode


class StreamError(RuntimeError):
    """A stream stage cannot go on (configuration or wiring), as opposed to a bad record."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record a stage refuses: it becomes a dead letter, never an exception."""

    reason: ReasonCode
    detail: str
    field: str | None = None
    stage: str = "validate"
