"""jobs.lake.sinks: the dedupe lookup prunes to the UTC dates of the batch, whatever the host's time zone."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest

from jobs.lake.sinks import utc_date

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("zone", "local", "expected"),
    [
        ("America/New_York", datetime(2026, 6, 1, 22, 30), date(2026, 6, 2)),  # EDT: 02:30 UTC the next day
        ("Europe/Berlin", datetime(2026, 6, 2, 0, 30), date(2026, 6, 1)),  # CEST: 22:30 UTC the day before
        ("UTC", datetime(2026, 6, 1, 23, 59), date(2026, 6, 1)),
    ],
)
def test_a_naive_local_time_from_pyspark_gets_its_utc_date(
    monkeypatch: pytest.MonkeyPatch, zone: str, local: datetime, expected: date
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        assert utc_date(local) == expected
        assert utc_date(local.astimezone(UTC)) == expected  # an aware time too
    finally:
        monkeypatch.undo()
        time.tzset()
