"""Date arguments of `make nightly`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import typer

from infra.settings import InfraSettings
from jobs.nightly import schedule
from jobs.nightly.cli import parse_dates
from jobs.nightly.schedule import missed_day, next_run

pytestmark = pytest.mark.unit
TODAY = date(2026, 11, 24)


def test_default_is_yesterday() -> None:
    assert parse_dates(None, TODAY) == [date(2026, 11, 23)]
    assert parse_dates("", TODAY) == [date(2026, 11, 23)]


def test_one_day_and_a_range() -> None:
    assert parse_dates("2026-11-01", TODAY) == [date(2026, 11, 1)]
    assert parse_dates("2026-10-30..2026-11-02", TODAY) == [
        date(2026, 10, 30),
        date(2026, 10, 31),
        date(2026, 11, 1),
        date(2026, 11, 2),
    ]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("yesterday", "expected YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"),
        ("2026-11-05..2026-11-01", "the range ends before it starts"),
        ("2026-13-01", "month must be in 1..12"),
        ("2020-01-01..2026-01-01", "more than a year"),
    ],
)
def test_bad_dates_are_refused_with_the_reason(bad: str, reason: str) -> None:
    with pytest.raises(typer.BadParameter) as refused:
        parse_dates(bad, TODAY)
    assert str(refused.value).startswith(repr(bad))
    assert reason in str(refused.value)


def test_next_run_follows_the_cron_in_utc() -> None:
    fire = next_run("30 2 * * *", datetime(2026, 11, 24, 3, 0, tzinfo=UTC))
    assert fire == datetime(2026, 11, 25, 2, 30, tzinfo=UTC)


def _run(started: datetime) -> dict[str, object]:
    return {"date": "x", "started_at": started.isoformat(), "seconds": 60.0, "outcome": "ok"}


@pytest.mark.parametrize(
    ("now", "runs", "owed"),
    [
        # Down at 02:30, back at 04:00: the 02:30 run (for the 23rd) is owed.
        (datetime(2026, 11, 24, 4, 0, tzinfo=UTC), [], date(2026, 11, 23)),
        # A run started before the fire time (by hand, say) does not count; one started at or after it does,
        # whatever its outcome.
        (
            datetime(2026, 11, 24, 4, 0, tzinfo=UTC),
            [_run(datetime(2026, 11, 24, 1, 0, tzinfo=UTC))],
            date(2026, 11, 23),
        ),
        (datetime(2026, 11, 24, 4, 0, tzinfo=UTC), [_run(datetime(2026, 11, 24, 2, 30, 1, tzinfo=UTC))], None),
        # Back more than 6 h after the fire time: too late to catch up (`make nightly` runs any day by hand).
        (datetime(2026, 11, 24, 9, 0, tzinfo=UTC), [], None),
        # Before today's fire time, yesterday's is 23.5 h ago: nothing owed.
        (datetime(2026, 11, 24, 2, 0, tzinfo=UTC), [], None),
    ],
)
def test_a_daemon_started_after_a_missed_fire_time_owes_that_run(
    now: datetime, runs: list[dict[str, object]], owed: date | None
) -> None:
    assert missed_day("30 2 * * *", runs, now) == owed


def test_a_frequent_cron_owes_only_its_latest_fire_time() -> None:
    now = datetime(2026, 11, 24, 4, 0, 30, tzinfo=UTC)
    assert missed_day("* * * * *", [], now) == date(2026, 11, 23)  # fired at 04:00: yesterday's batch
    assert missed_day("* * * * *", [_run(datetime(2026, 11, 24, 4, 0, 5, tzinfo=UTC))], now) is None


def test_a_run_over_its_time_limit_is_killed_and_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real child (the nightly CLI, still importing Spark after 0.3 s) killed at the limit: the night gets a line.
    monkeypatch.setattr(schedule, "RUN_LIMIT_S", 0.3)
    infra = InfraSettings(data_dir=tmp_path)
    record = schedule.run_once(infra, date(2026, 11, 30))
    assert record["outcome"] == "failed (killed after 0.3 s)"
    [line] = schedule.runs_file(infra).read_text().splitlines()
    assert json.loads(line)["date"] == "2026-11-30"
