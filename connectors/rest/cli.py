"""`python -m connectors.rest`: serve the broker, manage API tokens, generate the local certificate, sweep claims."""

from __future__ import annotations

import dataclasses
import json
import logging
import ssl
import sys
from typing import Annotated

import httpx
import typer
import uvicorn
from minio import Minio
from rich.console import Console
from rich.table import Table

from connectors.rest._http11 import JsonErrorH11Protocol
from connectors.rest.app import create_app
from connectors.rest.claims import ClaimStore
from connectors.rest.settings import RestSettings
from connectors.rest.tls import ensure_self_signed
from connectors.rest.tokens import Role, TokenError, TokenStore
from infra import cli_main, procs
from infra.errors import InfraError
from infra.settings import InfraSettings, get_settings

app = typer.Typer(help="The Vigil REST broker (docs/rest.md).", no_args_is_help=True)
token = typer.Typer(help="API tokens: issue, list, revoke (administrator).", no_args_is_help=True)
app.add_typer(token, name="token")
console = Console()


NAME = "rest"


@app.command()
def serve(
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    data_dir: Annotated[str, typer.Option(help="the platform's data folder; `start` passes it for `make down`")] = "",
) -> None:
    """Run the broker on HTTPS (one worker, foreground); Ctrl-C stops it."""
    settings, infra = RestSettings(), get_settings()
    if ensure_self_signed(settings.cert_file, settings.key_file, settings.host):
        console.print(f"generated a self-signed certificate: {settings.cert_file}")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings, infra),
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.cert_file),
        ssl_keyfile=str(settings.key_file),
        log_level=log_level,
        timeout_graceful_shutdown=10,
        http=JsonErrorH11Protocol,
        h11_max_incomplete_event_size=settings.max_head_bytes,
    )


def _local(settings: RestSettings) -> tuple[str, ssl.SSLContext]:
    """The URL of the broker `make rest` runs, and a TLS context trusting exactly its certificate."""
    return f"https://{settings.host}:{settings.port}", ssl.create_default_context(cafile=settings.cert_file)


def _get_health(url: str, tls: ssl.SSLContext) -> httpx.Response | None:
    try:
        with httpx.Client(verify=tls, timeout=2) as client:
            return client.get(f"{url}/health")
    except (httpx.HTTPError, OSError):
        return None


def _healthy(settings: RestSettings) -> bool:
    answer = _get_health(*_local(settings))
    return answer is not None and answer.status_code == 200


def health_summary(url: str, tls: ssl.SSLContext) -> str | None:
    """For `make status`: what a live broker at `url` is doing when it is not plainly serving; else None."""
    answer = _get_health(url, tls)
    try:
        health = answer.json() if answer is not None and answer.status_code == 200 else {}
    except ValueError:
        answer = None
    if answer is None:
        return "not answering /health (see its log)"
    if health.get("status") != "ok":
        return f"/health answered {answer.status_code} (see its log)"
    if health.get("registry") != "ready":
        return "reading the sensor registry: lookups answer 503 until it is done"
    return None


def status_detail(_: InfraSettings) -> str | None:
    """`health_summary` of the broker `make rest` runs."""
    settings = RestSettings()
    try:
        url, tls = _local(settings)
    except OSError as exc:  # a deleted certificate: the running broker still serves the one it loaded
        return f"cannot read its certificate {settings.cert_file} to ask /health ({exc.strerror})"
    return health_summary(url, tls)


@app.command()
def start(timeout: Annotated[float, typer.Option(help="seconds to wait for /health")] = 90.0) -> None:
    """Start the broker in the background (idempotent) and wait until it answers; `make down` stops it."""
    settings, infra = RestSettings(), get_settings()
    ensure_self_signed(settings.cert_file, settings.key_file, settings.host)
    already = procs.running_pid(infra, NAME)
    argv = [sys.executable, "-m", "connectors.rest", "serve", "--data-dir", str(infra.data_dir)]
    try:
        pid = already or procs.start(infra, procs.ProcessSpec(NAME, argv, (settings.port,), infra.data_dir.parent))
        procs.wait_healthy(infra, NAME, pid, lambda: _healthy(settings), timeout=timeout)
    except InfraError as exc:
        console.print(f"[bold red]error[/] {exc}")
        raise typer.Exit(1) from exc
    how = "already running" if already else "started"
    console.print(
        f"[green]✓[/] REST broker pid {pid} {how} on https://{settings.host}:{settings.port}"
        f" (log: {procs.log_file(infra, NAME)}; certificate {settings.cert_file})"
    )


@app.command()
def stop() -> None:
    """Stop the background broker (by recorded PID)."""
    stopped = procs.stop(get_settings(), NAME)
    console.print(f"REST broker: {'stopped' if stopped else 'was not running'}")


@app.command()
def cert() -> None:
    """Generate the local self-signed certificate if there is none (`make up` does this)."""
    settings = RestSettings()
    written = ensure_self_signed(settings.cert_file, settings.key_file, settings.host)
    console.print(f"{'generated' if written else 'kept the existing'} certificate {settings.cert_file}")


@app.command()
def sweep() -> None:
    """Delete expired claim-check objects now (the server also does it every VIGIL_REST_SWEEP_INTERVAL_S)."""
    settings, infra = RestSettings(), get_settings()
    client = Minio(
        infra.minio_endpoint,
        access_key=infra.minio_root_user,
        secret_key=infra.minio_root_password.get_secret_value(),
        secure=False,
    )
    deleted = ClaimStore(client, settings.blob_bucket).sweep()
    console.print(f"deleted {len(deleted)} expired claim(s)")


@token.command("issue")
def issue(
    principal: Annotated[str, typer.Option(help="who the token is for: a gateway id or a user name")],
    role: Annotated[
        Role, typer.Option(help="gateway: writes for its gateway ids; app: redeems claims; admin")
    ] = Role.GATEWAY,
    topic: Annotated[
        list[str] | None, typer.Option(help="topic it may write (repeat); default edge.packages.v1")
    ] = None,
    gateway: Annotated[list[str] | None, typer.Option(help="gateway id it may send for (repeat; '*' = any)")] = None,
    note: Annotated[str, typer.Option(help="free text shown in listings")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="print the token as JSON")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the token (for TOKEN=$(...))")] = False,
) -> None:
    """Issue a token. It is printed once: only its hash is kept."""
    store = TokenStore(RestSettings().token_db)
    topics = topic or ["edge.packages.v1"]
    gateways = gateway if gateway is not None else ([principal] if role is Role.GATEWAY else [])
    try:
        grant, secret = store.issue(principal, role, topics, gateways, note)
    except TokenError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps({"token_id": grant.token_id, "token": secret, "principal": principal}))
        return
    if quiet:
        print(secret)
        return
    console.print(f"token {grant.token_id} for {principal} ({role.value}; topics {topics}; gateways {gateways}):")
    print(secret)
    console.print("[dim]store it now: it cannot be shown again[/dim]")


@token.command("list")
def list_tokens(as_json: Annotated[bool, typer.Option("--json", help="one JSON object per token")] = False) -> None:
    """Every token: id, principal, role, topics, gateways, created, revoked (never the secret)."""
    grants = TokenStore(RestSettings().token_db).list()
    if as_json:
        for grant in grants:
            print(json.dumps({**dataclasses.asdict(grant), "role": grant.role.value}))
        return
    table = Table()
    table.add_column("id", no_wrap=True, min_width=8)
    for column in ("principal", "role", "topics", "gateways", "created", "revoked", "note"):
        table.add_column(column)
    for grant in grants:
        table.add_row(
            grant.token_id,
            grant.principal,
            grant.role.value,
            ",".join(grant.topics),
            ",".join(grant.gateways),
            grant.created_at[:19],
            (grant.revoked_at or "")[:19],
            grant.note,
        )
    console.print(table)


@token.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="the id shown by `token list`")]) -> None:
    """Revoke a token: the next request with it gets 401."""
    try:
        grant = TokenStore(RestSettings().token_db).revoke(token_id)
    except TokenError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"revoked {grant.token_id} ({grant.principal})")


def main() -> None:
    """The console script: a bad setting ends it with one line per problem, not a traceback."""
    cli_main.run(app)
