"""`python -m jobs.lake start|stop|status|supervise|run`: the streaming lake writer for operators."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from infra import procs
from infra.errors import InfraError
from infra.settings import get_settings
from infra.stop_signals import set_on_stop_signals
from jobs.lake import supervisor
from jobs.lake.settings import LakeSettings
from jobs.lake.status import Supervision, fresh_status, read_status, status_path

NAME = "lake"
app = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)
console = Console(soft_wrap=True)
DATA_DIR = typer.Option("", help="the platform's data folder; `start` passes it so `make down` knows us")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def run(
    data_dir: str = DATA_DIR,
    supervisor_pid: int = typer.Option(0, help="set by `supervise`: stop if that process is gone"),
    restarts: int = typer.Option(0, help="set by `supervise`: restarts so far, reported in the status file"),
    last_failure: str = typer.Option("", help="set by `supervise`: why the previous writer ended"),
) -> None:
    """Run the writer in the foreground until Ctrl-C, without restarts (on Kubernetes its operator restarts it)."""
    from jobs.lake import writer  # imports pyspark: only the writer's own process needs it

    _logging()
    writer.run(supervision=Supervision(restarts, last_failure or None, supervisor_pid or None))


@app.command()
def supervise(data_dir: str = DATA_DIR) -> None:
    """Run the writer in the foreground and start it again after a failure (what `start` runs in the background)."""
    _logging()
    settings, lake = get_settings(), LakeSettings()
    stopping = threading.Event()
    set_on_stop_signals(stopping)

    def command(supervision: Supervision) -> list[str]:
        argv = [sys.executable, "-m", "jobs.lake", "run", "--data-dir", data_dir or str(settings.data_dir)]
        argv += ["--supervisor-pid", str(supervision.supervisor_pid), "--restarts", str(supervision.restarts)]
        return [*argv, "--last-failure", supervision.last_failure or ""]

    raise typer.Exit(supervisor.supervise(command, lake, status_path(settings, lake), stopping))


@app.command()
def start(timeout: float = typer.Option(240.0, help="seconds to wait for the first healthy status")) -> None:
    """Start the supervised writer in the background (idempotent) and wait until its query runs."""
    settings = get_settings()
    already = procs.running_pid(settings, NAME)
    # The data folder in argv marks the process as ours for `make down` (see infra.procs.running_pid).
    argv = [sys.executable, "-m", "jobs.lake", "supervise", "--data-dir", str(settings.data_dir)]
    began = datetime.now(UTC)
    try:
        pid = already or procs.start(settings, procs.ProcessSpec(NAME, argv, (), settings.data_dir.parent))
        procs.wait_healthy(settings, NAME, pid, lambda: fresh_status(settings) is not None, timeout=timeout)
    except InfraError as exc:
        console.print(f"[bold red]error[/] {exc}")
        for line in start_failure(status_path(settings), began, procs.running_pid(settings, NAME) is not None):
            console.print(line)
        raise typer.Exit(1) from exc
    how = "already running" if already else "started"
    console.print(f"[green]✓[/] lake writer pid {pid} {how} (log: {procs.log_file(settings, NAME)})")


def start_failure(status: Path, began: datetime, supervised: bool) -> list[str]:
    """Why a writer started at `began` is not running, from its status file (the log holds pages of JVM output)."""
    last = read_status(status) or {}
    if not last.get("error") or datetime.fromisoformat(last["updated_at"]) < began:
        return []  # nothing written since the start: the log is all there is
    lines = [f"the writer failed: {last['error']}"]
    if supervised:
        lines.append("its supervisor goes on restarting it: `make lake-status` to follow, `make lake-stop` to stop")
    return lines


@app.command()
def stop() -> None:
    """Stop the background writer (by recorded PID); a batch in flight is re-run at the next start."""
    stopped = procs.stop(get_settings(), NAME, grace_s=60.0)
    console.print(f"lake writer: {'stopped' if stopped else 'was not running'}")


@app.command()
def status() -> None:
    """The writer's PID and its last micro-batch (or the error that stopped it); exit 1 if it is not running."""
    settings = get_settings()
    pid = procs.running_pid(settings, NAME)
    fresh = fresh_status(settings)
    console.print(f"lake writer pid {pid or '-'}: {'running' if fresh else 'not running'}")
    last = fresh or read_status(status_path(settings))
    if last:  # also when not running: its last word holds the error that stopped it or the restart under way
        console.print(json.dumps(last, indent=2))
    if pid is None or fresh is None:
        raise typer.Exit(1)
