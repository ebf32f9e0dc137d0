"""MinIO built from source with `go install` at a pinned pseudo-version (no release tags on the proxy)."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

from rich.console import Console

from infra.errors import InfraError
from infra.procs import ProcessSpec
from infra.settings import InfraSettings

NAME = "minio"
_MODULE = "github.com/minio/minio"
console = Console(stderr=True, soft_wrap=True)


def binary(settings: InfraSettings) -> Path:
    return settings.cache_dir / "minio" / settings.minio_version / "minio"


def fetch(settings: InfraSettings) -> None:
    target = binary(settings)
    if target.exists():
        return
    go = shutil.which("go")
    if go is None:
        raise InfraError(NAME, "`go` is not on PATH; MinIO is built from source with the Go toolchain")
    console.print(
        f"[bold]minio[/]: building {_MODULE}@{settings.minio_version} with go install (first run only, a few minutes) …"
    )
    # Build into a temporary GOBIN and move the binary last, so an interrupted build is never taken for a finished one.
    staging = target.parent / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(staging), "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    result = subprocess.run(
        [go, "install", "-x" if os.environ.get("VIGIL_VERBOSE") else "-v", f"{_MODULE}@{settings.minio_version}"],
        env=env,
        check=False,
    )
    if result.returncode != 0 or not (staging / "minio").exists():
        raise InfraError(NAME, f"go install failed (exit {result.returncode})")
    (staging / "minio").rename(target)
    staging.rmdir()


def ports(settings: InfraSettings) -> list[int]:
    return [settings.minio_port, settings.minio_console_port]


def prepare(settings: InfraSettings) -> ProcessSpec:
    data = settings.data_dir / "minio"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        str(binary(settings)),
        "server",
        str(data),
        "--address",
        f"{settings.host}:{settings.minio_port}",
        "--console-address",
        f"{settings.host}:{settings.minio_console_port}",
    ]
    env = {
        "MINIO_ROOT_USER": settings.minio_root_user,
        "MINIO_ROOT_PASSWORD": settings.minio_root_password.get_secret_value(),
        # No phoning home from a loopback-only install.
        "MINIO_UPDATE": "off",
        "MINIO_BROWSER": "on",
    }
    return ProcessSpec(name=NAME, argv=argv, ports=ports(settings), cwd=data, env=env)


def probe(settings: InfraSettings) -> bool:
    url = f"http://{settings.minio_endpoint}/minio/health/ready"
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def client(settings: InfraSettings):  # type: ignore[no-untyped-def]
    from minio import Minio

    return Minio(
        settings.minio_endpoint,
        access_key=settings.minio_root_user,
        secret_key=settings.minio_root_password.get_secret_value(),
        secure=False,
    )


def after_start(settings: InfraSettings) -> None:
    mc = client(settings)
    for bucket in settings.minio_buckets:
        if not mc.bucket_exists(bucket):
            mc.make_bucket(bucket)
