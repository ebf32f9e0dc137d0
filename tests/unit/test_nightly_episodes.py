"""Health alert episodes: one open when a machine turns unhealthy, one close when it is healthy again."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from contracts import AlertState
from jobs.nightly.episodes import Change, LastDay, Outcome, alert_id, next_day, open_episode

pytestmark = pytest.mark.unit
DAY = date(2026, 11, 23)
PUMP = ("plant-a", "pump-06")
LIMITS = {"unhealthy_below": 50.0, "healthy_again_at": 60.0}


def _days(scores: list[float | None]) -> list[Outcome | None]:
    """Score `scores` on consecutive days (None: the machine is not scored that day), carrying the state over as
    the nightly batch does through gold.health_scores."""
    last: LastDay | None = None
    outcomes: list[Outcome | None] = []
    for i, score in enumerate(scores):
        if score is None:
            outcomes.append(None)
            continue
        outcome = next_day(PUMP, DAY + timedelta(days=i), score, last, **LIMITS)
        episode = str(outcome.episode_id) if outcome.episode_id else None
        last = LastDay(healthy=score >= LIMITS["unhealthy_below"], episode_id=episode)
        outcomes.append(outcome)
    return outcomes


def _change(outcome: Outcome | None) -> Change:
    assert outcome is not None
    assert outcome.change is not None
    return outcome.change


def _changes(outcomes: list[Outcome | None]) -> list[tuple[int, AlertState]]:
    return [(i, o.change.state) for i, o in enumerate(outcomes) if o is not None and o.change is not None]


def test_a_healthy_machine_sends_nothing() -> None:
    assert _changes(_days([95, 80, 51, 50, 99])) == []


def test_an_episode_opens_once_and_closes_once_however_long_it_lasts() -> None:
    outcomes = _days([90, 45, 30, 12, 40, 75, 80])
    assert _changes(outcomes) == [(1, AlertState.OPEN), (5, AlertState.CLOSE)]
    opened, closed = _change(outcomes[1]), _change(outcomes[5])
    assert closed.episode_id == opened.episode_id == opened.alert_id
    assert closed.alert_id != opened.alert_id
    assert outcomes[5] is not None
    assert outcomes[5].episode_id is None


def test_a_score_wobbling_around_the_threshold_keeps_one_episode() -> None:
    # Back above 50 (healthy that day) but below 60: still the same episode, so 45 again opens nothing new.
    assert _changes(_days([45, 55, 45, 59, 48, 60, 55, 49])) == [
        (0, AlertState.OPEN),
        (5, AlertState.CLOSE),
        (7, AlertState.OPEN),
    ]


def test_an_episode_stays_open_through_days_the_machine_is_not_scored() -> None:
    outcomes = _days([40, None, None, 45, 65])
    assert _changes(outcomes) == [(0, AlertState.OPEN), (4, AlertState.CLOSE)]
    assert outcomes[3] is not None
    assert outcomes[3].episode_id == _change(outcomes[0]).alert_id


def test_a_day_the_machine_cannot_be_judged_neither_opens_nor_closes() -> None:
    episode = str(uuid.uuid4())
    kept = next_day(PUMP, DAY, None, LastDay(healthy=False, episode_id=episode), **LIMITS)
    assert kept == Outcome(None, uuid.UUID(episode))
    assert next_day(PUMP, DAY, None, None, **LIMITS) == Outcome(None, None)


def test_ids_are_derived_from_machine_day_and_state() -> None:
    first = _change(next_day(PUMP, DAY, 10.0, None, **LIMITS))
    again = _change(next_day(PUMP, DAY, 20.0, None, **LIMITS))  # a re-run of the day with another score: same id
    assert first.alert_id == again.alert_id == alert_id(PUMP, DAY, AlertState.OPEN)
    others = {
        alert_id(PUMP, DAY, AlertState.CLOSE),
        alert_id(PUMP, DAY + timedelta(days=1), AlertState.OPEN),
        alert_id(("plant-b", "pump-06"), DAY, AlertState.OPEN),
    }
    assert len(others) == 3
    assert first.alert_id not in others


def test_the_open_id_is_the_one_raised_before_episodes_were_recorded() -> None:
    # A re-run of a day an older version already alerted on must find the id it sent then.
    expected = uuid.uuid5(uuid.UUID("6b1f2a5e-3c4d-4e8f-9a0b-1c2d3e4f5a6b"), f"health:plant-a:pump-06:{DAY}")
    assert alert_id(PUMP, DAY, AlertState.OPEN) == expected


def test_a_row_from_before_episodes_were_recorded_is_open_when_unhealthy() -> None:
    raised = str(uuid.uuid4())
    assert open_episode(LastDay(healthy=False, episode_id=None, last_raised=raised)) == uuid.UUID(raised)
    assert open_episode(LastDay(healthy=True, episode_id=None, last_raised=raised)) is None
    closed = _change(next_day(PUMP, DAY, 70.0, LastDay(healthy=False, episode_id=None, last_raised=raised), **LIMITS))
    assert closed.state is AlertState.CLOSE
    assert closed.episode_id == uuid.UUID(raised)
