"""`python -m connectors.files`: pick up dropped CSV/Parquet files (local inbox, FTP) and send them to Kafka."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors.files.kafka import FilesError
from connectors.files.ledger import Ledger
from connectors.files.pickup import Pickup, Summary
from connectors.files.settings import FilesSettings
from infra import cli_main
from infra.stop_signals import set_on_stop_signals

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
console = Console()
errors = Console(stderr=True)

Bootstrap = Annotated[
    str | None, typer.Option(help="Kafka bootstrap servers.", show_default="$VIGIL_FILES_KAFKA_BOOTSTRAP or infra's")
]


def _settings(bootstrap: str | None) -> FilesSettings:
    settings = FilesSettings()
    return settings.model_copy(update={"kafka_bootstrap": bootstrap}) if bootstrap else settings


def _pickup(settings: FilesSettings) -> Pickup:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return Pickup(settings)
    except FilesError as exc:
        errors.print(f"[red]files: {exc}[/red]")
        raise typer.Exit(2) from exc


@contextmanager
def _until_stopped(pickup: Pickup) -> Iterator[threading.Event]:
    """An event Ctrl-C or SIGTERM sets (the pickup then finishes its current file); a second Ctrl-C aborts with
    exit code 130. Closes the pickup on the way out."""
    stopping = threading.Event()
    set_on_stop_signals(stopping, second_ctrl_c_aborts=True)
    try:
        yield stopping
    except KeyboardInterrupt:
        # Aborted mid-file: what it sent of that file is sent again next run (its packages keep their ids, so
        # the stream drops them as duplicates; its dead letters are repeated).
        errors.print("[yellow]aborted: the current file is not recorded and goes again next run[/yellow]")
        raise typer.Exit(130) from None
    finally:
        pickup.close()


def render(summary: Summary) -> Table:
    table = Table("source", "file", "outcome", "packages", "readings", "bad rows", "detail", title="files this pass")
    for f in summary.files:
        table.add_row(f.source, f.name, f.outcome, str(f.packages), str(f.samples), str(f.bad_rows), f.detail)
    table.caption = (
        f"ingested {summary.count('ingested')}, rejected {summary.count('rejected')}, "
        f"duplicates {summary.count('duplicate')}, failed {summary.count('failed')}, "
        f"waiting {summary.waiting}, already in ledger {summary.known}; "
        f"{summary.packages} packages, {summary.bad_rows} bad rows"
        + ("; stopped on request, the other files wait for the next run" if summary.stopped else "")
    )
    return table


@app.command()
def run(
    poll_seconds: Annotated[float | None, typer.Option(min=0.1, help="Seconds between passes.")] = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Poll the inbox (and FTP, if configured) every N seconds until Ctrl-C (or SIGTERM), which lets the file
    being sent finish first; a second Ctrl-C aborts it."""
    settings = _settings(bootstrap)
    interval = poll_seconds or settings.poll_seconds
    pickup = _pickup(settings)
    sources = ", ".join(s.label for s in pickup.sources)
    logging.getLogger(__name__).info(
        "watching %s every %.1f s; ledger %s; Ctrl-C stops after the current file",
        sources,
        interval,
        settings.ledger_file,
    )
    with _until_stopped(pickup) as stopping:
        while not stopping.is_set():
            pickup.run_once(stopping)
            stopping.wait(interval)
    console.print("stopped")


@app.command()
def once(bootstrap: Bootstrap = None) -> None:
    """One pass, then print a summary (exit 1 if a file could not be sent; Ctrl-C ends the pass after the
    current file, exit 130)."""
    pickup = _pickup(_settings(bootstrap))
    with _until_stopped(pickup) as stopping:
        summary = pickup.run_once(stopping)
    console.print(render(summary))
    if summary.count("failed"):
        raise typer.Exit(1)
    if summary.stopped:
        raise typer.Exit(130)


@app.command()
def ledger(limit: Annotated[int, typer.Option(min=1, help="Most recent N files.")] = 50) -> None:
    """List processed files, most recent first."""
    settings = FilesSettings()
    if not settings.ledger_file.exists():
        console.print(f"no ledger yet at {settings.ledger_file}")
        return
    table = Table("processed at", "source", "name", "size", "sha256", "status", "packages", "readings", "bad rows")
    with Ledger(settings.ledger_file) as book:
        for e in book.entries(limit):
            table.add_row(
                f"{e.processed_at:%Y-%m-%d %H:%M:%S}",
                e.source,
                e.name,
                str(e.size),
                e.sha256[:12],
                e.status,
                str(e.packages),
                str(e.samples),
                str(e.bad_rows),
            )
    console.print(table)


def main() -> None:
    """The console script: a bad setting ends it with one line per problem, not a traceback."""
    cli_main.run(app)
