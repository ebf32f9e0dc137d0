"""The ten analyst questions of docs/queries.md run in Trino on the lake the other e2e tests filled.

Runs after tests/e2e/test_lake.py (file order), so the writer's views and the
nightly batch's gold tables exist.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts import ClockSource, Quantity, ReasonCode, Severity
from infra.settings import InfraSettings
from jobs.lake.catalog import connect
from jobs.nightly.settings import NightlySettings
from streams.enrich import CANONICAL_UNIT

pytestmark = pytest.mark.e2e
DOC = Path(__file__).resolve().parents[2] / "docs" / "queries.md"


def questions() -> list[tuple[str, str]]:
    """(heading, SQL) of each numbered question: a `### N. ...` heading followed by a ```sql block."""
    text = DOC.read_text(encoding="utf-8")
    return re.findall(r"^### (\d+\. .+?)\n+```sql\n(.+?)```", text, flags=re.MULTILINE | re.DOTALL)


def test_the_doc_has_ten_questions() -> None:
    assert [q[0].split(".")[0] for q in questions()] == [str(i) for i in range(1, 11)] == list(ANSWERS)


Row = dict[str, Any]


def _sorted(rows: list[Row], key: Callable[[Row], Any], descending: bool = False) -> bool:
    keys = [key(r) for r in rows]
    return keys == sorted(keys, reverse=descending)


def _latest(rows: list[Row]) -> None:
    assert _sorted(rows, lambda r: (r["asset_id"], r["quantity"]))  # one row per sensor: a machine has several
    assert all(r["unit"] == CANONICAL_UNIT[Quantity(r["quantity"])] and math.isfinite(r["value"]) for r in rows)


def _hourly_rms(rows: list[Row]) -> None:
    since = datetime.now(UTC) - timedelta(days=1, hours=1)  # Trino answers timestamp(3) with time zone
    assert all(r["rms"] >= 0 and r["samples"] > 0 and r["hour"] >= since for r in rows)
    assert _sorted(rows, lambda r: (r["asset_id"], r["hour"]))


def _open_alerts(rows: list[Row]) -> None:
    assert all(r["severity"] in {s.value for s in Severity} and r["open_for"] >= timedelta(0) for r in rows)
    assert _sorted(rows, lambda r: r["opened_at"])


def _episodes(rows: list[Row]) -> None:
    assert all(r["episodes"] >= 1 and r["critical_messages"] >= 0 for r in rows)
    assert _sorted(rows, lambda r: r["episodes"], descending=True)
    assert len(rows) <= 10


def _rejections(rows: list[Row]) -> None:
    assert {r["reason"] for r in rows} <= {c.value for c in ReasonCode}
    assert all(r["messages"] > 0 for r in rows)


def _quality(rows: list[Row]) -> None:
    counts = ("ok", "spikes", "stuck", "out_of_range", "non_finite", "missing")
    assert all(r[c] >= 0 for r in rows for c in counts)
    assert _sorted(rows, lambda r: r["spikes"] + r["stuck"] + r["out_of_range"] + r["non_finite"], descending=True)
    assert any(r["spikes"] + r["stuck"] + r["non_finite"] > 0 for r in rows)  # the simulated plant injects faults


def _clocks(rows: list[Row]) -> None:
    assert {r["clock_source"] for r in rows} <= {c.value for c in ClockSource}
    assert all(r["min_ms"] <= r["mean_offset_ms"] <= r["max_ms"] and r["packages"] > 0 for r in rows)
    assert _sorted(rows, lambda r: abs(r["mean_offset_ms"]), descending=True)


def _temperature(rows: list[Row]) -> None:
    assert all(r["max_value"] >= r["avg_value"] for r in rows)
    assert [r["minute"] for r in rows] == sorted({r["minute"] for r in rows})


def _freshness(rows: list[Row]) -> None:
    assert all(r["last_received"] is not None for r in rows)
    assert _sorted(rows, lambda r: r["since_last_received"], descending=True)


def _health(rows: list[Row]) -> None:
    assert all(0 <= r["score"] <= 100 and r["rank"] >= 1 for r in rows)
    assert _sorted(rows, lambda r: r["score"])
    assert all(r["unhealthy_since"] is None or r["unhealthy_since"] <= r["date"] for r in rows)
    # An unhealthy machine has its health alert open (the nightly batch opened it that day or before).
    assert all(r["unhealthy_since"] is not None for r in rows if r["score"] < NightlySettings().unhealthy_below)


# What each answer must satisfy, by question number: checks a wrong join, filter or order would fail.
ANSWERS: dict[str, Callable[[list[Row]], None]] = {
    "1": _latest,
    "2": _hourly_rms,
    "3": _open_alerts,
    "4": _episodes,
    "5": _rejections,
    "6": _quality,
    "7": _clocks,
    "8": _temperature,
    "9": _freshness,
    "10": _health,
}


@pytest.mark.parametrize(("title", "sql"), questions(), ids=[q[0].split(".")[0] for q in questions()])
def test_question_runs_and_answers(lake_writer: InfraSettings, title: str, sql: str) -> None:
    with connect(lake_writer, user="vigil-e2e") as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        columns = [d[0] for d in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    # The e2e runs before this one streamed a plant through every table, so each question has an answer.
    assert rows, f"{title}: no rows"
    ANSWERS[title.split(".")[0]](rows)
