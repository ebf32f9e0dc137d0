"""Resolve artifacts from Maven Central with the machine's `mvn` into the download cache.

Only `mvn` knows where the registry is; nothing here names a host. A folder is
complete once its `.complete` stamp exists, so an interrupted fetch resumes.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from infra.errors import InfraError

console = Console(stderr=True, soft_wrap=True)

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>org.vigil</groupId><artifactId>fetch-{label}</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencyManagement><dependencies>{managed}</dependencies></dependencyManagement>
  <dependencies>{deps}</dependencies>
</project>
"""


def _dep(coord: str, *, managed: bool = False) -> str:
    parts = coord.split(":")
    group, artifact, version = parts[0], parts[1], parts[2]
    exclusions = ""
    if not managed and len(parts) > 3 and parts[3] == "nodeps":
        exclusions = "<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>"
    return (
        f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version>{exclusions}</dependency>"
    )


def run(service: str, args: Sequence[str], cwd: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError(service, "`mvn` is not on PATH; install Maven (apt-get install maven)")
    console.print(f"[bold]{service}[/]: resolving with Maven (first run only) …")
    result = subprocess.run([mvn, "-B", *args], cwd=cwd, check=False)
    if result.returncode != 0:
        raise InfraError(service, f"Maven could not resolve the artifacts (exit {result.returncode})")


def render_pom(label: str, coords: Sequence[str]) -> str:
    """A throw-away POM whose dependencies are `coords` (`group:artifact:version[:nodeps]`).

    The same versions are also managed, so where one of them is a transitive dependency of another, the
    listed (served) version is used without Maven first reading the descriptor of the other version.
    """
    managed = "".join(_dep(c, managed=True) for c in coords)
    return _POM.format(label=label, managed=managed, deps="".join(_dep(c) for c in coords))


def copy_with_dependencies(service: str, coords: Sequence[str], dest: Path) -> Path:
    """Copy `group:artifact:version[:nodeps]` and their runtime dependencies into `dest`.

    Copied into a staging folder renamed to `dest` once complete: a copy cut short (Ctrl-C) left a truncated
    jar in `dest`, which Maven's next run kept (it is newer than the source) and stamped complete.
    """
    stamp = dest / ".complete"
    if stamp.exists():
        return dest
    staging = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="vigil-mvn-") as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(render_pom(service, coords))
        run(
            service,
            ["dependency:copy-dependencies", f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
            Path(tmp),
        )
    (staging / ".complete").touch()
    shutil.rmtree(dest, ignore_errors=True)  # what an interrupted run of the older code left there
    staging.rename(dest)
    return dest


def copy_artifact(service: str, coord: str, dest: Path) -> Path:
    """Copy one artifact (`group:artifact:version:packaging`) into `dest`; return its path."""
    _group, artifact, version, packaging = coord.split(":")
    target = dest / f"{artifact}-{version}.{packaging}"
    if target.exists():
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vigil-mvn-") as tmp:
        run(
            service,
            ["dependency:copy", f"-Dartifact={coord}", f"-DoutputDirectory={dest}", "-Dmdep.overWriteReleases=true"],
            Path(tmp),
        )
    if not target.exists():
        raise InfraError(service, f"Maven finished but {target} is missing")
    return target
