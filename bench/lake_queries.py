"""`make bench-lake` (part 2): the ten analyst questions of docs/queries.md, Trino against DuckDB.

Both engines read the same Delta tables in MinIO's `lake` bucket:

- Trino through the `vigil` catalog (its Delta Lake connector), as analysts do;
- DuckDB in this process, each table opened with the `deltalake` package
  (delta-rs reads the transaction log, then hands DuckDB a pyarrow dataset of
  the live Parquet files in MinIO). The Trino views the questions use
  (jobs/lake/views.py) are created in DuckDB from the same SQL.

Opening the tables (reading the logs) is timed once and reported apart; each
question is then run once to warm up and `--runs` times, and its median is
reported. The only dialect difference the questions meet is map access:
Trino's `element_at(map, key)` is a NULL-safe lookup, DuckDB's returns a list,
so it is rewritten to DuckDB's `map[key]` (`DUCKDB_REWRITES`). Row counts of
both engines are reported next to the times as a check that they answered the
same question (questions over `current_timestamp` may differ by a row that
aged out between runs).
"""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final

import duckdb
import typer
from deltalake import DeltaTable
from rich.console import Console
from rich.table import Table as RichTable

from bench import machine
from infra.settings import InfraSettings, get_settings
from jobs.lake import tables as lake_tables
from jobs.lake.catalog import connect, registered
from jobs.lake.tables import Table
from jobs.lake.views import GOLD_VIEWS, VIEWS
from jobs.nightly.tables import HEALTH_SCORES

console = Console(soft_wrap=True)
RESULTS = Path(__file__).resolve().parent / "results"
DOC = Path(__file__).resolve().parents[1] / "docs" / "queries.md"
QUESTION = re.compile(r"^### (\d+\. .+?)\n+```sql\n(.+?)```", flags=re.MULTILINE | re.DOTALL)
# The tables the questions and their views read.
TABLES: Final = (
    lake_tables.SILVER_READINGS,
    lake_tables.SILVER_PACKAGES,
    lake_tables.SILVER_ALERTS,
    lake_tables.SILVER_SENSORS,
    lake_tables.BRONZE_DEADLETTER,
    HEALTH_SCORES,
)
DUCKDB_REWRITES: Final = ((re.compile(r"element_at\((\w+), ('[^']*')\)"), r"\1[\2]"),)


@dataclass(frozen=True)
class Question:
    title: str
    sql: str


def questions(doc: Path = DOC) -> list[Question]:
    """Each `### N. ...` heading of the doc with the ```sql block under it."""
    return [Question(title, sql.strip()) for title, sql in QUESTION.findall(doc.read_text(encoding="utf-8"))]


def to_duckdb(sql: str) -> str:
    for pattern, replacement in DUCKDB_REWRITES:
        sql = pattern.sub(replacement, sql)
    return sql


def timed(run: Callable[[], int], runs: int) -> tuple[float, int]:
    """Median seconds of `runs` runs after one warm-up, and the row count of the last."""
    rows = run()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        rows = run()
        times.append(time.perf_counter() - began)
    return statistics.median(times), rows


def open_in_duckdb(settings: InfraSettings) -> tuple[duckdb.DuckDBPyConnection, dict[str, float]]:
    """An in-memory DuckDB with each lake table (a delta-rs pyarrow dataset) and the Trino views."""
    options = {
        "AWS_ENDPOINT_URL": f"http://{settings.minio_endpoint}",
        "AWS_ACCESS_KEY_ID": settings.minio_root_user,
        "AWS_SECRET_ACCESS_KEY": settings.minio_root_password.get_secret_value(),
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    con = duckdb.connect()
    opened: dict[str, float] = {}
    for schema in sorted({t.schema for t in TABLES}):
        con.execute(f"CREATE SCHEMA {schema}")
    for table in TABLES:
        began = time.perf_counter()
        dataset = DeltaTable(table.s3(), storage_options=options).to_pyarrow_dataset()
        opened[table.qualified] = round(time.perf_counter() - began, 3)
        alias = f"{table.schema}__{table.name}"
        con.register(alias, dataset)
        con.execute(f"CREATE VIEW {table.qualified} AS SELECT * FROM {alias}")  # noqa: S608 (our table names)
    for name, sql in {**VIEWS, **GOLD_VIEWS}.items():
        con.execute(f"CREATE VIEW {name} AS {to_duckdb(sql)}")
    return con, opened


def ensure_gold(settings: InfraSettings) -> None:
    """Question 10 reads gold.health_scores: run today's nightly batch once if it never ran."""
    with connect(settings, user="vigil-bench") as connection:
        present = HEALTH_SCORES.name in registered(connection.cursor(), HEALTH_SCORES.schema)
    if not present:
        console.print("gold.health_scores is not there yet: running today's nightly batch (about a minute)")
        today = datetime.now(UTC).date().isoformat()
        subprocess.run([sys.executable, "-m", "jobs.nightly", "run", "--date", today, "--no-maintenance"], check=True)


def missing(settings: InfraSettings, tables: tuple[Table, ...]) -> list[str]:
    with connect(settings, user="vigil-bench") as connection:
        cursor = connection.cursor()
        known = {schema: registered(cursor, schema) for schema in {t.schema for t in tables}}
    return [t.qualified for t in tables if t.name not in known[t.schema]]


def compare(settings: InfraSettings, runs: int) -> dict[str, Any]:
    asked = questions()
    con, opened = open_in_duckdb(settings)
    rows: list[dict[str, Any]] = []
    with connect(settings, user="vigil-bench") as connection:
        cursor = connection.cursor()

        def trino(sql: str) -> Callable[[], int]:
            def run() -> int:
                cursor.execute(sql)
                return len(cursor.fetchall())

            return run

        def duck(sql: str) -> Callable[[], int]:
            return lambda: len(con.execute(sql).fetchall())

        for q in asked:
            trino_s, trino_rows = timed(trino(q.sql), runs)
            duck_s, duck_rows = timed(duck(to_duckdb(q.sql)), runs)
            rows.append(
                {
                    "question": q.title,
                    "trino_s": round(trino_s, 4),
                    "duckdb_s": round(duck_s, 4),
                    "ratio_trino_over_duckdb": round(trino_s / duck_s, 3),
                    "trino_rows": trino_rows,
                    "duckdb_rows": duck_rows,
                }
            )
            console.print(f"{q.title}: Trino {trino_s:.3f} s, DuckDB {duck_s:.3f} s")
    ratios = [float(r["ratio_trino_over_duckdb"]) for r in rows]
    return {
        "questions": rows,
        "geomean_ratio_trino_over_duckdb": round(math.exp(statistics.fmean(math.log(r) for r in ratios)), 3),
        "duckdb_table_open_s": opened,
        "runs_per_question": runs,
        "lake_rows": {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in opened},  # noqa: S608
    }


def main(
    runs: Annotated[int, typer.Option(help="timed runs per question and engine (after one warm-up)")] = 5,
) -> None:
    settings = get_settings()
    ensure_gold(settings)
    if absent := missing(settings, TABLES):
        console.print(f"[red]not in the lake yet: {', '.join(absent)}; run `make demo` or `make bench-lake` first")
        raise typer.Exit(1)
    result = {"benchmark": "lake-queries", "machine": machine.describe(settings), **compare(settings, runs)}
    table = RichTable(title="docs/queries.md: median seconds per question (Trino over the same Delta files as DuckDB)")
    for column in ("question", "Trino s", "DuckDB s", "Trino/DuckDB", "rows (Trino/DuckDB)"):
        table.add_column(column)
    for row in result["questions"]:
        table.add_row(
            row["question"],
            f"{row['trino_s']:.3f}",
            f"{row['duckdb_s']:.3f}",
            f"{row['ratio_trino_over_duckdb']:.2f}",
            f"{row['trino_rows']}/{row['duckdb_rows']}",
        )
    console.print(table)
    console.print(f"geometric mean of Trino/DuckDB: {result['geomean_ratio_trino_over_duckdb']}")
    console.print(f"DuckDB table opening (delta-rs log read, not in the times above): {result['duckdb_table_open_s']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"lake-queries-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    console.print(f"written to {out}")


if __name__ == "__main__":
    typer.run(main)
