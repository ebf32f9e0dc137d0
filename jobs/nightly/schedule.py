"""The nightly schedule: an APScheduler daemon that runs yesterday's batch at a cron time (UTC).

Each night's batch runs in a child process (`python -m jobs.nightly run`), so a
failed or leaking Spark session never outlives it; every run is appended to
`.data/nightly/runs.jsonl` (date, start, seconds, outcome) for `status`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from infra.settings import InfraSettings

log = logging.getLogger("vigil.nightly")
NAME = "nightly-scheduler"
GRACE = timedelta(hours=6)  # a fire time missed by up to this much still runs, once
RUN_LIMIT_S: float = 6 * 3600  # a night's batch still running after this is killed and recorded as failed


def runs_file(infra: InfraSettings) -> Path:
    return infra.data_dir / "nightly" / "runs.jsonl"


def trigger(cron: str) -> CronTrigger:
    return CronTrigger.from_crontab(cron, timezone=UTC)


def next_run(cron: str, now: datetime | None = None) -> datetime | None:
    now = now or datetime.now(UTC)
    fire: datetime | None = trigger(cron).get_next_fire_time(None, now)
    return fire


def run_once(infra: InfraSettings, day: date) -> dict[str, Any]:
    """Run one day's batch in a child process and record the outcome."""
    started = time.monotonic()
    began = datetime.now(UTC)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "jobs.nightly", "run", "--date", day.isoformat()], check=False, timeout=RUN_LIMIT_S
        )
        outcome = "ok" if result.returncode == 0 else f"failed (exit {result.returncode})"
    except subprocess.TimeoutExpired:  # subprocess.run has killed it; the night still gets its runs.jsonl line
        outcome = f"failed (killed after {RUN_LIMIT_S:g} s)"
    record = {
        "date": day.isoformat(),
        "started_at": began.isoformat(),
        "seconds": round(time.monotonic() - started, 1),
        "outcome": outcome,
    }
    path = runs_file(infra)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(record) + "\n")
    log.info("nightly run for %s: %s", day, record["outcome"])
    return record


def last_runs(infra: InfraSettings, n: int = 5) -> list[dict[str, Any]]:
    try:
        lines = runs_file(infra).read_text().splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines[-n:]]


def missed_day(cron: str, runs: list[dict[str, Any]], now: datetime, grace: timedelta = GRACE) -> date | None:
    """The day whose batch a daemon starting at `now` owes: that of the latest fire time of `cron` within `grace`
    before `now`, unless a run started since that fire time. None if nothing is owed."""
    cron_trigger = trigger(cron)
    fire: datetime | None = cron_trigger.get_next_fire_time(None, now - grace)
    latest: datetime | None = None
    while fire is not None and fire <= now:  # bounded: at most one fire a minute within `grace`
        latest, fire = fire, cron_trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    if latest is None or any(datetime.fromisoformat(r["started_at"]) >= latest for r in runs):
        return None
    return latest.date() - timedelta(days=1)


def serve(infra: InfraSettings, cron: str) -> None:
    """Block, running yesterday's batch at each fire time of `cron`, and first the one missed while it was down."""
    scheduler = BlockingScheduler(timezone=UTC)
    scheduler.add_job(
        lambda: run_once(infra, datetime.now(UTC).date() - timedelta(days=1)),
        trigger(cron),
        id="nightly",
        max_instances=1,
        coalesce=True,  # a fire time passed while the process was stalled (e.g. a suspended machine): one run
        misfire_grace_time=int(GRACE.total_seconds()),
    )
    # APScheduler keeps its jobs in memory: a fire time that passed while this daemon was not running at all
    # (platform down, machine off) is unknown to it. The runs file tells whether that night's batch ran.
    owed = missed_day(cron, last_runs(infra, n=50), datetime.now(UTC))
    if owed is not None:
        log.info("the run for %s was missed while the scheduler was down: running it now", owed)
        scheduler.add_job(run_once, args=(infra, owed), id="nightly-catch-up")
    # The pid lets `make nightly-schedule` tell this start from an older daemon's line in the same log.
    log.info("nightly batch scheduled at '%s' UTC; next run %s (pid %d)", cron, next_run(cron), os.getpid())
    scheduler.start()
