"""Date arguments of `make nightly`."""

from __future__ import annotations

from datetime import date

import pytest
import typer

from jobs.nightly.cli import parse_dates
from jobs.nightly.schedule import next_run

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


@pytest.mark.parametrize("bad", ["yesterday", "2026-11-05..2026-11-01", "2026-13-01", "2020-01-01..2026-01-01"])
def test_bad_dates_are_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(typer.BadParameter, match=bad.split("..")[0][:4]):
        parse_dates(bad, TODAY)


def test_next_run_follows_the_cron_in_utc() -> None:
    from datetime import UTC, datetime

    fire = next_run("30 2 * * *", datetime(2026, 11, 24, 3, 0, tzinfo=UTC))
    assert fire == datetime(2026, 11, 25, 2, 30, tzinfo=UTC)
