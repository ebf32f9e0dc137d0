"""Trino (coordinator and worker in one JVM) with a Delta Lake catalog whose tables and metastore live in MinIO."""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from infra import maven
from infra.errors import InfraError
from infra.procs import ProcessSpec, port_open
from infra.settings import InfraSettings

if TYPE_CHECKING:
    from trino.dbapi import Connection

NAME = "trino"
_HERE = Path(__file__).resolve().parent / "trino"
_BUCKET = "lake"
# The tarball bundles ~55 plugins; the one catalog is Delta. Loading just that one measured ~2 s faster
# and ~100-200 MB smaller than loading all of them (2 cores, Trino 476, JDK 25).
_PLUGINS = ("delta-lake",)
_UNITS = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


def home(settings: InfraSettings) -> Path:
    """The extracted server (read-only, shared by every data folder)."""
    return settings.cache_dir / "trino" / f"trino-server-{settings.trino_version}"


def cli_jar(settings: InfraSettings) -> Path:
    """The CLI, a self-contained jar: `java -jar <it> --server <url>` (used by `make sql`)."""
    return settings.cache_dir / "trino" / f"trino-cli-{settings.trino_version}-executable.jar"


def fetch(settings: InfraSettings) -> None:
    target = home(settings)
    stamp = target.parent / f".trino-server-{settings.trino_version}.complete"
    if not stamp.exists():
        _extract(settings, target)
        stamp.touch()
    jar = cli_jar(settings)
    if not jar.exists():
        # The plain trino-cli jar has no dependencies inside; only the `executable` classifier runs alone,
        # and copy_artifact takes no classifier. Copy into a temporary folder and move, so a jar is always whole.
        coord = f"io.trino:trino-cli:{settings.trino_version}:jar:executable"
        jar.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="vigil-mvn-", dir=jar.parent) as tmp:
            maven.run(NAME, ["dependency:copy", f"-Dartifact={coord}", f"-DoutputDirectory={tmp}"], Path(tmp))
            (Path(tmp) / jar.name).rename(jar)


def _extract(settings: InfraSettings, target: Path) -> None:
    # Everything happens in a staging folder that each attempt starts afresh, and the server folder appears
    # by one rename: an interrupted copy or extraction (a half tarball included) is simply redone next time.
    staging = target.parent / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    coord = f"io.trino:trino-server:{settings.trino_version}:tar.gz"
    tarball = maven.copy_artifact(NAME, coord, staging)
    with tarfile.open(tarball) as archive:
        archive.extractall(staging, filter="data")
    if not (staging / target.name / "bin" / "launcher").exists():
        raise InfraError(NAME, f"{tarball} does not contain {target.name}/bin/launcher")
    (staging / target.name).rename(target)
    shutil.rmtree(staging)  # the 800 MB tarball is not needed again (Maven keeps its own copy)


def ports(settings: InfraSettings) -> list[int]:
    return [settings.trino_port]


def _query_memory(heap: str) -> str:
    """30% of the heap, Trino's own per-node default, so per-node memory plus the 30% headroom always fit."""
    match = re.fullmatch(r"(\d+)([KMGT])", heap.strip().upper())
    if match is None:
        raise InfraError(NAME, f"VIGIL_TRINO_HEAP={heap!r} is not like 3G or 2048M")
    megabytes = int(match.group(1)) * _UNITS[match.group(2)]
    return f"{max(int(megabytes * 0.3), 64)}MB"


def _write(template: str, dest: Path, **values: object) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text((_HERE / template).read_text().format(**values))
    dest.chmod(0o600)  # the catalog file holds the MinIO secret key


def prepare(settings: InfraSettings) -> ProcessSpec:
    server = home(settings)
    if not (server / "lib").is_dir():
        raise InfraError(NAME, f"{server} is missing; run `make fetch`")
    base = settings.data_dir / "trino"
    etc, data = base / "etc", base / "data"
    data.mkdir(parents=True, exist_ok=True)
    plugins = base / "plugin"
    _link_plugins(server / "plugin", plugins)
    _write("node.properties.template", etc / "node.properties", data_dir=data, host=settings.host)
    _write("jvm.config.template", etc / "jvm.config", heap=settings.trino_heap)
    _write(
        "config.properties.template",
        etc / "config.properties",
        host=settings.host,
        port=settings.trino_port,
        query_memory=_query_memory(settings.trino_heap),
        plugin_dir=plugins,
        catalog_dir=etc / "catalog",
    )
    _write("log.properties.template", etc / "log.properties")
    _write(
        "catalog/delta.properties.template",
        etc / "catalog" / f"{settings.trino_catalog}.properties",
        bucket=_BUCKET,
        endpoint=f"http://{settings.minio_endpoint}",
        access_key=settings.minio_root_user,
        secret_key=settings.minio_root_password.get_secret_value(),
    )
    java = settings.trino_java_home / "bin" / "java"
    if not java.exists():
        raise InfraError(NAME, f"no {java}; Trino {settings.trino_version} needs JDK 24+ (set VIGIL_TRINO_JAVA_HOME)")
    return ProcessSpec(name=NAME, argv=_java_argv(java, server, etc), ports=ports(settings), cwd=data)


def _java_argv(java: Path, server: Path, etc: Path) -> list[str]:
    """The command `bin/launcher run` would exec, run directly so the recorded PID is the JVM itself.

    Through the launcher the PID passes bash -> Go launcher -> java by exec, each exec a moment in which
    /proc/<pid>/cmdline reads empty and the process is not recognised as ours. The launcher's own PID file
    also outlives a killed JVM and then blocks the next start ("ERROR: already running as <pid>").
    """
    jvm = [line.strip() for line in (etc / "jvm.config").read_text().splitlines()]
    node = [line.strip() for line in (etc / "node.properties").read_text().splitlines()]
    return [
        str(java),
        "-cp",
        f"{server / 'lib'}/*",
        *(option for option in jvm if option and not option.startswith("#")),
        *(f"-D{prop}" for prop in node if prop and not prop.startswith("#")),
        f"-Dlog.levels-file={etc / 'log.properties'}",
        f"-Dconfig={etc / 'config.properties'}",
        "io.trino.server.TrinoServer",
    ]


def _link_plugins(source: Path, dest: Path) -> None:
    # Symlinks, not copies: the folder is rebuilt on each start, so changing _PLUGINS needs no clean-up.
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for plugin in _PLUGINS:
        (dest / plugin).symlink_to(source / plugin, target_is_directory=True)


class _Cursor(Protocol):
    """The part of the DB-API cursor used here, typed (the `trino` client ships without annotations)."""

    def execute(self, operation: str) -> object: ...

    def fetchall(self) -> list[list[object]]: ...


@contextmanager
def _cursor(settings: InfraSettings, timeout: float) -> Iterator[_Cursor]:
    import trino  # imported late, like the other services' clients: `python -m infra --help` stays fast

    connect: Callable[..., Connection] = trino.dbapi.connect
    connection = connect(
        host=settings.host,
        port=settings.trino_port,
        user="vigil",
        catalog=settings.trino_catalog,
        request_timeout=timeout,
        max_attempts=1,  # the caller retries; the client's own back-off would hide a dead server for minutes
    )
    with closing(connection):
        cursor: _Cursor = connection.cursor()
        yield cursor


def probe(settings: InfraSettings) -> bool:
    if not port_open(settings.host, settings.trino_port):
        return False
    try:
        with _cursor(settings, timeout=5) as cursor:
            cursor.execute("SELECT 1")
            return bool(cursor.fetchall() == [[1]])
    except Exception:  # noqa: BLE001 - "starting", "no nodes yet" and refused connections all mean "not yet"
        return False


def after_start(settings: InfraSettings) -> None:
    with _cursor(settings, timeout=60) as cursor:
        for schema in settings.trino_schemas:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
                raise InfraError(NAME, f"schema name {schema!r} is not a plain SQL identifier")
            cursor.execute(
                f"CREATE SCHEMA IF NOT EXISTS {settings.trino_catalog}.{schema} "
                f"WITH (location = 's3://{_BUCKET}/{schema}')"
            )
            cursor.fetchall()
