"""`python -m jobs.nightly run|schedule|unschedule|status`: the nightly batch for operators."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, date, datetime, timedelta

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from infra import procs
from infra.errors import InfraError
from infra.settings import get_settings
from jobs.nightly import schedule
from jobs.nightly.settings import NightlySettings

app = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)
console = Console(soft_wrap=True)


def parse_dates(text: str | None, today: date) -> list[date]:
    """`YYYY-MM-DD`, a range `YYYY-MM-DD..YYYY-MM-DD` (both included), or None for yesterday."""
    if not text:
        return [today - timedelta(days=1)]
    first, sep, last = text.partition("..")
    try:
        start = date.fromisoformat(first.strip())
        end = date.fromisoformat(last.strip()) if sep else start
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: expected YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD ({exc})") from exc
    if end < start:
        raise typer.BadParameter(f"{text!r}: the range ends before it starts")
    if (end - start).days > 366:
        raise typer.BadParameter(f"{text!r}: more than a year; run it in parts")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


@app.command()
def run(
    dates: str = typer.Option("", "--date", help="YYYY-MM-DD or a range A..B (backfill); default: yesterday (UTC)"),
    maintenance: bool = typer.Option(True, help="compact, apply retention and vacuum before the gold tables"),
) -> None:
    """Run the batch for each day (idempotent: a re-run replaces the day's gold partitions)."""
    from jobs.nightly.run import run_day
    from jobs.spark_session import build_spark

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    days = parse_dates(dates, datetime.now(UTC).date())
    infra, nightly = get_settings(), NightlySettings()
    spark = build_spark("vigil-nightly", infra, driver_memory=nightly.driver_memory)
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("nightly batch", total=len(days))
            for day in days:
                progress.update(task, description=f"nightly batch {day}")
                result = run_day(spark, infra, nightly, day, maintenance=maintenance)
                progress.advance(task)
                _report(result)
    finally:
        spark.stop()


def _report(result: object) -> None:
    from jobs.nightly.run import DayResult

    assert isinstance(result, DayResult)
    console.rule(f"[bold]{result.day}[/] ({result.seconds:.0f} s)")
    for line in result.maintenance:
        console.print(f"  {line}")
    console.print(f"  gold.daily_sensor_stats: {result.sensors} sensors")
    ranking = Table("rank", "machine", "site", "score", "worst sensor", "basis", title="gold.health_scores")
    for rank, m in enumerate(result.machines, start=1):
        ranking.add_row(
            str(rank), m.asset_id, m.site, f"{m.score:.1f}", f"{m.worst.quantity} {m.worst.worst_feature}", m.basis
        )
    console.print(ranking)
    for alert in result.alerts:
        console.print(f"  [yellow]health alert[/]: {alert}")
    ledger = Table("topic", "table", "kafka", "rows", "status", title="gold.pipeline_ledger")
    for row in result.ledger:
        topic, table, kafka, rows, _diff, status = row[:6]
        colour = "green" if status == "ok" else "red"
        ledger.add_row(str(topic), str(table), str(kafka), str(rows), f"[{colour}]{status}[/]")
    console.print(ledger)


@app.command("schedule")
def schedule_on() -> None:
    """Enable the schedule: start the scheduler daemon (idempotent); it runs yesterday's batch at the cron time."""
    infra, nightly = get_settings(), NightlySettings()
    already = procs.running_pid(infra, schedule.NAME)
    argv = [sys.executable, "-m", "jobs.nightly", "scheduler", "--data-dir", str(infra.data_dir)]
    try:
        pid = already or procs.start(infra, procs.ProcessSpec(schedule.NAME, argv, (), infra.data_dir.parent))
        if already is None:  # this start's own line: the log also holds older daemons' lines
            procs.wait_healthy(
                infra,
                schedule.NAME,
                pid,
                lambda: (
                    "UTC; next run" in (log := procs.tail(procs.log_file(infra, schedule.NAME)))
                    and f"(pid {pid})" in log
                ),
                timeout=60,
            )
    except InfraError as exc:
        console.print(f"[bold red]error[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"[green]✓[/] nightly schedule on (pid {pid}, '{nightly.schedule_cron}' UTC, next run "
        f"{schedule.next_run(nightly.schedule_cron)}; log {procs.log_file(infra, schedule.NAME)})"
    )


@app.command()
def unschedule() -> None:
    """Disable the schedule: stop the scheduler daemon (a run in progress is stopped too)."""
    stopped = procs.stop(get_settings(), schedule.NAME)
    console.print(f"nightly schedule: {'off (stopped)' if stopped else 'was already off'}")


@app.command()
def status() -> None:
    """Whether the schedule is on, when it runs next, and the last runs."""
    infra, nightly = get_settings(), NightlySettings()
    pid = procs.running_pid(infra, schedule.NAME)
    state = f"[green]on[/] (pid {pid})" if pid else "[yellow]off[/] (`make nightly-schedule` turns it on)"
    console.print(f"nightly schedule: {state}; cron '{nightly.schedule_cron}' UTC")
    if pid:
        console.print(f"next run: {schedule.next_run(nightly.schedule_cron)}")
    runs = Table("date", "started", "seconds", "outcome", title=f"last runs ({schedule.runs_file(infra)})")
    for r in schedule.last_runs(infra):
        runs.add_row(r["date"], r["started_at"], str(r["seconds"]), r["outcome"])
    console.print(runs)


@app.command(hidden=True)
def scheduler(data_dir: str = typer.Option("", help="marks the process as this platform's for `make down`")) -> None:
    """The daemon `schedule` starts (foreground)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    schedule.serve(get_settings(), NightlySettings().schedule_cron)
