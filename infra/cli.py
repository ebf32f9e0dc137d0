"""`python -m infra up|down|status|clean|fetch`: the operator's view of the local platform."""

from __future__ import annotations

import functools
import importlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors.rest.settings import RestSettings
from connectors.rest.tls import ensure_self_signed
from infra import cli_main, procs
from infra.errors import InfraError
from infra.settings import InfraSettings, get_settings
from jobs.lake import status as lake_status

# Start order matters: Trino's catalog lives in MinIO.
SERVICES: dict[str, ModuleType] = {n: importlib.import_module(f"infra.{n}") for n in ("kafka", "minio", "trino")}
app = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)
console = Console(soft_wrap=True)


def _rest_detail(settings: InfraSettings) -> str | None:
    from connectors.rest.cli import status_detail  # imports the whole app: only when a broker is running

    return status_detail(settings)


# Apps whose process can be alive without doing its work: what they are doing instead, for `status`.
_APP_DETAIL: dict[str, Callable[[InfraSettings], str | None]] = {"lake": lake_status.summary, "rest": _rest_detail}


@dataclass(frozen=True)
class AppHealth:
    pid: int | None
    text: str  # rich markup for the status table
    healthy: bool


def app_health(settings: InfraSettings, app_name: str) -> AppHealth:
    """An app with a PID file: running, alive but not doing its work (say what instead), or exited."""
    pid = procs.running_pid(settings, app_name)
    if pid is None:
        return AppHealth(None, "[red]exited[/] (PID file left: see its log)", healthy=False)
    detail = _APP_DETAIL[app_name](settings) if app_name in _APP_DETAIL else None
    if detail:
        return AppHealth(pid, f"[yellow]{detail}[/]", healthy=False)
    return AppHealth(pid, "[green]running[/]", healthy=True)


ServiceNames = Annotated[list[str] | None, typer.Argument(help="services (default: all)")]


def _chosen(names: list[str] | None) -> dict[str, ModuleType]:
    if not names:
        return SERVICES
    unknown = sorted(set(names) - SERVICES.keys())
    if unknown:
        raise typer.BadParameter(f"unknown service(s) {unknown}; known: {sorted(SERVICES)}")
    return {n: SERVICES[n] for n in SERVICES if n in names}


def _fail(exc: InfraError) -> None:
    console.print(f"[bold red]error[/] {exc}")
    raise typer.Exit(1)


@app.command()
def fetch(names: ServiceNames = None) -> None:
    """Download and build everything (first run only; cached in VIGIL_CACHE_DIR)."""
    settings = get_settings()
    try:
        for module in _chosen(names).values():
            module.fetch(settings)
        if not names:
            importlib.import_module("infra.spark").fetch(settings)
    except InfraError as exc:
        _fail(exc)


@app.command()
def up(names: ServiceNames = None) -> None:
    """Fetch (first run), start and health-check the services; idempotent."""
    settings = get_settings()
    began = time.monotonic()
    try:
        for name, module in _chosen(names).items():
            module.fetch(settings)
            started = time.monotonic()
            already = procs.running_pid(settings, name)
            pid = procs.start(settings, module.prepare(settings)) if already is None else already
            procs.wait_healthy(settings, name, pid, functools.partial(module.probe, settings))
            module.after_start(settings)
            how = "already running" if already else f"started in {time.monotonic() - started:.0f}s"
            console.print(f"[green]✓[/] {name} pid {pid} {how} (log: {procs.log_file(settings, name)})")
        if not names:
            importlib.import_module("infra.spark").fetch(settings)
            console.print("[green]✓[/] spark jars resolved")
            rest = RestSettings()
            if ensure_self_signed(rest.cert_file, rest.key_file, rest.host):
                console.print(f"[green]✓[/] self-signed certificate for the REST broker: {rest.cert_file}")
    except InfraError as exc:
        _fail(exc)
    console.print(f"platform up in {time.monotonic() - began:.0f}s")


@app.command()
def down(names: ServiceNames = None) -> None:
    """Stop what `up` started (by recorded PID); data is kept."""
    settings = get_settings()
    if not names:
        # Apps started by other targets (`make lake`, `make rest`, ...) record PIDs in the same folder;
        # they are stopped before the services they depend on.
        for app_name in sorted(procs.recorded(settings) - SERVICES.keys()):
            stopped = procs.stop(settings, app_name)
            console.print(f"{app_name}: {'stopped' if stopped else 'was not running'}")
    for name in reversed(list(_chosen(names))):
        stopped = procs.stop(settings, name)
        console.print(f"{name}: {'stopped' if stopped else 'was not running'}")


@app.command()
def status() -> None:
    """Each service and started app with its PID, ports and health; exit 1 unless all are healthy.

    An app counts as unhealthy when its process exited without `down` (PID file left) or is alive but not doing
    its work (a lake writer waiting to restart, a REST broker not answering): a script polling `status` sees it.
    """
    settings = get_settings()
    table = Table("service", "pid", "ports", "health", "log")
    healthy_all = True
    for name, module in SERVICES.items():
        pid = procs.running_pid(settings, name)
        try:
            healthy = pid is not None and bool(module.probe(settings))
        except Exception:  # noqa: BLE001 - any failure of a probe means unhealthy
            healthy = False
        healthy_all &= healthy
        table.add_row(
            name,
            str(pid or "-"),
            ",".join(str(p) for p in module.ports(settings)),
            "[green]healthy[/]" if healthy else ("[yellow]not answering[/]" if pid else "[red]stopped[/]"),
            str(procs.log_file(settings, name)),
        )
    # Apps started by other targets (their own `status` commands say more).
    for app_name in sorted(procs.recorded(settings) - SERVICES.keys()):
        app_state = app_health(settings, app_name)
        healthy_all &= app_state.healthy
        table.add_row(app_name, str(app_state.pid or "-"), "-", app_state.text, str(procs.log_file(settings, app_name)))
    console.print(table)
    if not healthy_all:
        raise typer.Exit(1)


@app.command()
def clean() -> None:
    """Stop everything and delete the data folder (never the download cache)."""
    settings = get_settings()
    down(None)
    if settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    console.print(f"removed {settings.data_dir} (cache kept: {settings.cache_dir})")


if __name__ == "__main__":
    app()


def main() -> None:
    """The console script: a bad setting ends it with one line per problem, not a traceback."""
    cli_main.run(app)
