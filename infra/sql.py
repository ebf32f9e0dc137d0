"""`make sql`: the Trino CLI on catalog `vigil` (interactive), or one query with `make sql Q="..."`.

The CLI is the executable jar `make up` fetched into the cache; it runs on the
same Java as Trino.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from infra import trino
from infra.settings import get_settings


def main(
    query: Annotated[str, typer.Option("--query", "-q", help="run this one statement and exit")] = "",
    schema: Annotated[str, typer.Option(help="default schema")] = "silver",
) -> None:
    settings = get_settings()
    jar = trino.cli_jar(settings)
    if not jar.exists():
        typer.echo(f"the Trino CLI is not in {jar}; run `make up` first", err=True)
        raise typer.Exit(1)
    java = str(settings.trino_java_home / "bin" / "java")
    argv = [
        java,
        "-jar",
        str(jar),
        f"--server={settings.trino_url}",
        f"--catalog={settings.trino_catalog}",
        f"--schema={schema}",
        f"--user={os.environ.get('USER', 'analyst')}",
    ]
    if query:
        argv += [f"--execute={query}", "--output-format=ALIGNED"]
    sys.stdout.flush()
    os.execv(java, argv)  # noqa: S606 - our own java; the CLI owns the terminal from here (history, paging)


if __name__ == "__main__":
    typer.run(main)
