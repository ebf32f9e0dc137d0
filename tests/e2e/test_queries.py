"""The ten analyst questions of docs/queries.md run in Trino on the lake the other e2e tests filled.

Runs after tests/e2e/test_lake.py (file order), so the writer's views and the
nightly batch's gold tables exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.settings import InfraSettings
from jobs.lake.catalog import connect

pytestmark = pytest.mark.e2e
DOC = Path(__file__).resolve().parents[2] / "docs" / "queries.md"


def questions() -> list[tuple[str, str]]:
    """(heading, SQL) of each numbered question: a `### N. ...` heading followed by a ```sql block."""
    text = DOC.read_text(encoding="utf-8")
    return re.findall(r"^### (\d+\. .+?)\n+```sql\n(.+?)```", text, flags=re.MULTILINE | re.DOTALL)


def test_the_doc_has_ten_questions() -> None:
    assert [q[0].split(".")[0] for q in questions()] == [str(i) for i in range(1, 11)]


@pytest.mark.parametrize(("title", "sql"), questions(), ids=[q[0].split(".")[0] for q in questions()])
def test_question_runs_and_answers(lake_writer: InfraSettings, title: str, sql: str) -> None:
    with connect(lake_writer, user="vigil-e2e") as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        rows = cursor.fetchall()
        columns = [d[0] for d in cursor.description]
    assert columns, title
    # The e2e runs before this one streamed a plant through every table, so each question has an answer.
    assert rows, f"{title}: no rows"
