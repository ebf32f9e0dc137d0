"""Health alert episodes of the nightly batch: which day opens a machine's episode and which closes it. Pure.

A machine without an open health episode opens one on the first day it scores below `unhealthy_below`: an
`open` alert on alerts.v1. The episode stays open through days it is not scored (a silent machine has not
recovered) until a day scores at least `healthy_again_at`, which sends the `close` with the same episode id.
`healthy_again_at` sits above `unhealthy_below` (hysteresis): a score wobbling around the threshold gives one
episode, not an open and a close every other day. A day the machine could not be judged (no sensor had a history
or peers to compare with: score None) neither opens nor closes.

Alert ids are derived from machine, day and state, so a re-run of a day derives the same ids and can tell
from the partition it replaces which of them it already sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Final

from contracts import AlertState

# Fixed: the same machine, day and state give the same alert id on every run.
_NAMESPACE: Final = uuid.UUID("6b1f2a5e-3c4d-4e8f-9a0b-1c2d3e4f5a6b")

Machine = tuple[str, str]  # (site, asset id): asset ids are unique only within a site


@dataclass(frozen=True)
class LastDay:
    """A machine's latest gold.health_scores row before the day being scored."""

    healthy: bool
    episode_id: str | None
    # The id of the latest open alert it raised (on that day or before); only read for rows written before
    # gold.health_scores had `episode_id`, whose open episode is not recorded.
    last_raised: str | None = None


@dataclass(frozen=True)
class Change:
    state: AlertState
    alert_id: uuid.UUID
    episode_id: uuid.UUID


@dataclass(frozen=True)
class Outcome:
    change: Change | None  # the alert this day sends, if any
    episode_id: uuid.UUID | None  # the episode open at the end of the day


def alert_id(machine: Machine, day: date, state: AlertState) -> uuid.UUID:
    site, asset_id = machine
    kind = "health" if state is AlertState.OPEN else "health-close"  # `health:` is the id raised opens had before
    return uuid.uuid5(_NAMESPACE, f"{kind}:{site}:{asset_id}:{day.isoformat()}")


def open_episode(last: LastDay | None) -> uuid.UUID | None:
    """The episode a machine had open before the day."""
    if last is None:
        return None
    if last.episode_id is not None:
        return uuid.UUID(last.episode_id)
    if not last.healthy and last.last_raised is not None:
        return uuid.UUID(last.last_raised)  # a row from before episodes were recorded: unhealthy means open
    return None


def next_day(
    machine: Machine,
    day: date,
    score: float | None,
    last: LastDay | None,
    *,
    unhealthy_below: float,
    healthy_again_at: float,
) -> Outcome:
    episode = open_episode(last)
    if score is None:
        return Outcome(None, episode)
    if episode is None:
        if score < unhealthy_below:
            opened = alert_id(machine, day, AlertState.OPEN)
            return Outcome(Change(AlertState.OPEN, opened, opened), opened)
        return Outcome(None, None)
    if score >= healthy_again_at:
        return Outcome(Change(AlertState.CLOSE, alert_id(machine, day, AlertState.CLOSE), episode), None)
    return Outcome(None, episode)
