"""`python -m jobs.lake start|run|stop|status`: the streaming lake writer for operators."""

from __future__ import annotations

import json
import logging
import sys

import typer
from rich.console import Console

from infra import procs
from infra.errors import InfraError
from infra.settings import get_settings
from jobs.lake import writer

NAME = "lake"
app = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)
console = Console(soft_wrap=True)


@app.command()
def run(
    data_dir: str = typer.Option("", help="the platform's data folder; `start` passes it so `make down` knows us"),
) -> None:
    """Run the writer in the foreground until Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    writer.run()


@app.command()
def start(timeout: float = typer.Option(240.0, help="seconds to wait for the first healthy status")) -> None:
    """Start the writer in the background (idempotent) and wait until its query runs."""
    settings = get_settings()
    already = procs.running_pid(settings, NAME)
    # The data folder in argv marks the process as ours for `make down` (see infra.procs.running_pid).
    argv = [sys.executable, "-m", "jobs.lake", "run", "--data-dir", str(settings.data_dir)]
    try:
        pid = already or procs.start(settings, procs.ProcessSpec(NAME, argv, (), settings.data_dir.parent))
        procs.wait_healthy(settings, NAME, pid, lambda: writer.fresh_status(settings) is not None, timeout=timeout)
    except InfraError as exc:
        console.print(f"[bold red]error[/] {exc}")
        raise typer.Exit(1) from exc
    how = "already running" if already else "started"
    console.print(f"[green]✓[/] lake writer pid {pid} {how} (log: {procs.log_file(settings, NAME)})")


@app.command()
def stop() -> None:
    """Stop the background writer (by recorded PID); a batch in flight is re-run at the next start."""
    stopped = procs.stop(get_settings(), NAME, grace_s=60.0)
    console.print(f"lake writer: {'stopped' if stopped else 'was not running'}")


@app.command()
def status() -> None:
    """The writer's PID and its last micro-batch; exit 1 if it is not running."""
    settings = get_settings()
    pid = procs.running_pid(settings, NAME)
    fresh = writer.fresh_status(settings)
    console.print(f"lake writer pid {pid or '-'}: {'running' if fresh else 'not running'}")
    if fresh:
        console.print(json.dumps(fresh, indent=2))
    if pid is None or fresh is None:
        raise typer.Exit(1)
