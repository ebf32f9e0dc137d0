"""The extra jars Spark jobs need (Delta, the Kafka source, S3A), resolved once into the download cache.

Jobs put these local files on `spark.jars`, so starting a session never downloads anything and
never runs Ivy (`spark.jars.packages`). Jars that pyspark already ships are dropped here: two
versions of one library on the classpath fail late and confusingly (NoSuchMethodError at run time).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import tempfile
from pathlib import Path

from infra import maven
from infra.errors import InfraError
from infra.settings import InfraSettings

NAME = "spark"
# Bump when the selection below changes, so an old cache folder is not reused.
_REVISION = 3
_SCALA = "2.13"

# PyPI has patch releases whose jars Maven Central does not serve (checked 2026-11-23):
# delta-spark 4.4.1 has no jar, so take 4.4.0 (same Delta protocol and Spark 4.1 build). Spark's
# Kafka source is served up to 4.1.3, its spark-token-provider dependency only at 4.1.1: take the
# 4.1.3 source (4.1.1 has SPARK-57438, a NullPointerException in progress reporting that kills a
# query restarted from its checkpoint) and pin the token provider to 4.1.1, whose delegation-token
# API did not change within 4.1. spark-avro follows the served connector version (4.1.1).
_SERVED_DELTA = {"4.4.1": "4.4.0"}
_SERVED_KAFKA_SOURCE = {"4.1.4": "4.1.3"}
_SERVED_SPARK_CONNECTOR = {"4.1.4": "4.1.1", "4.1.3": "4.1.1", "4.1.2": "4.1.1"}

# Artifacts whose classes pyspark ships under another name; keeping them duplicates classes.
_PROVIDED_ELSEWHERE = {
    "commons-logging": "jcl-over-slf4j (Spark routes commons-logging to SLF4J)",
    "shims": "RoaringBitmap 1.x (the shim classes moved into the main jar)",
}


def coordinates(settings: InfraSettings) -> list[str]:
    spark_minor = ".".join(settings.spark_version.split(".")[:2])
    delta = _SERVED_DELTA.get(settings.delta_version, settings.delta_version)
    connector = _SERVED_SPARK_CONNECTOR.get(settings.spark_version, settings.spark_version)
    kafka_source = _SERVED_KAFKA_SOURCE.get(settings.spark_version, connector)
    return [
        # Since Delta 4.1 the artifact name carries the Spark minor it was built against.
        f"io.delta:delta-spark_{spark_minor}_{_SCALA}:{delta}",
        f"org.apache.spark:spark-sql-kafka-0-10_{_SCALA}:{kafka_source}",
        # Declared directly so Maven takes this served version over the source's own (nearest wins).
        f"org.apache.spark:spark-token-provider-kafka-0-10_{_SCALA}:{connector}",
        # from_avro for the stream stage's schemaless Avro topics (readings, alerts, dead letters).
        f"org.apache.spark:spark-avro_{_SCALA}:{connector}",
        # Brings the AWS SDK v2 `bundle` (about 640 MB, shaded): Hadoop supports only that one.
        f"org.apache.hadoop:hadoop-aws:{settings.hadoop_version}",
    ]


def jar_dir(settings: InfraSettings) -> Path:
    key = f"spark{settings.spark_version}-delta{settings.delta_version}-hadoop{settings.hadoop_version}-r{_REVISION}"
    return settings.cache_dir / "spark-jars" / key


def pyspark_jars() -> Path:
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise InfraError(NAME, "pyspark is not installed in this Python (pip install -e .)")
    return Path(spec.origin).parent / "jars"


def _check_pyspark(settings: InfraSettings) -> None:
    installed = importlib.metadata.version("pyspark")
    if installed != settings.spark_version:
        raise InfraError(NAME, f"pyspark {installed} is installed but VIGIL_SPARK_VERSION is {settings.spark_version}")


def _shipped_by_pyspark(artifact: str, shipped: list[str]) -> bool:
    # pyspark names its jars `<artifact>-<version>.jar`; a version always starts with a digit,
    # so `commons-pool-1.5.4.jar` matches `commons-pool` but never `commons-pool2`.
    prefix = f"{artifact}-"
    return any(name.startswith(prefix) and name[len(prefix) : len(prefix) + 1].isdigit() for name in shipped)


def _select(repo: Path, shipped: list[str]) -> list[Path]:
    """Delete the jars pyspark already has; return the rest, relative to `repo`."""
    kept: list[Path] = []
    for jar in sorted(repo.rglob("*.jar")):
        # Repository layout: <group path>/<artifact>/<version>/<file>, so the artifact is exact.
        artifact = jar.parent.parent.name
        if artifact in _PROVIDED_ELSEWHERE or _shipped_by_pyspark(artifact, shipped):
            jar.unlink()
        else:
            kept.append(jar.relative_to(repo))
    return kept


def fetch(settings: InfraSettings) -> None:
    """Resolve the jars into `jar_dir(settings)` once; later calls return at once."""
    final = jar_dir(settings)
    if (final / ".complete").exists():
        return
    _check_pyspark(settings)
    shipped = sorted(p.name for p in pyspark_jars().glob("*.jar"))
    final.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the final folder and rename it at the end: an interrupted fetch leaves no half folder.
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the cache is shared like the other downloads
    try:
        repo = staging / "repo"
        pom = staging / "pom.xml"
        pom.write_text(maven.render_pom(NAME, coordinates(settings)))
        copy = ["dependency:copy-dependencies", f"-DoutputDirectory={repo}", "-DincludeScope=runtime"]
        maven.run(NAME, [*copy, "-Dmdep.useRepositoryLayout=true"], staging)
        kept = _select(repo, shipped)
        pom.unlink()
        (staging / "jars.txt").write_text("".join(f"repo/{p.as_posix()}\n" for p in kept))
        (staging / ".complete").touch()
        if final.exists():
            shutil.rmtree(final)  # a folder without the stamp is a leftover of an interrupted older fetch
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def jar_paths(settings: InfraSettings) -> list[Path]:
    """The local jar files to put on `spark.jars`; fails if `fetch` has not run."""
    folder = jar_dir(settings)
    manifest = folder / "jars.txt"
    if not (folder / ".complete").exists() or not manifest.exists():
        raise InfraError(NAME, f"Spark jars are not in {folder}; run `python -m infra fetch` first")
    paths = [folder / line for line in manifest.read_text().splitlines() if line]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise InfraError(
            NAME, f"{len(missing)} jar(s) vanished from {folder} (e.g. {missing[0].name}); delete it and fetch again"
        )
    return paths


def total_size(settings: InfraSettings) -> int:
    return sum(p.stat().st_size for p in jar_paths(settings))
