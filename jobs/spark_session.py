"""One SparkSession recipe for every job: local Spark writing Delta tables to MinIO and reading Kafka.

The settings are infra's `InfraSettings` (the same `VIGIL_*` variables): the MinIO credentials, the
Kafka address and the versions that key the jar cache then cannot drift between `make up` and a job.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from infra import spark as spark_jars
from infra.settings import InfraSettings, get_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _jar_conf(settings: InfraSettings, master: str) -> dict[str, str]:
    """Put the jars that `python -m infra fetch` resolved on the classpath: no download, no Ivy."""
    jars = spark_jars.jar_paths(settings)
    if master.startswith("local"):
        # In local mode the executors live in the driver JVM, so the driver classpath is enough.
        # `spark.jars` would also work but copies every jar (640 MB, mostly the AWS SDK bundle)
        # into a fresh /tmp/spark-*/userFiles folder at each session start.
        return {"spark.driver.extraClassPath": os.pathsep.join(str(p) for p in jars)}
    return {"spark.jars": ",".join(str(p) for p in jars)}


# A stop during a foreachBatch write makes Spark match the Python error (a long traceback with the Java
# stack) against a regex that recurses per character: with the default 1 MB thread stack the query
# thread died of StackOverflowError and the driver with it (3 of 4 stops in a repro here, 5 of 18 lake
# writer stops); with 16 MB, none of 4. The Kubernetes manifest (infra/deploy_render.py) uses it too.
DRIVER_JAVA_OPTIONS = "-Xss16m"
SNAPSHOT_PARTITIONS = 2  # the cores of this machine's local[2]


def spark_conf(
    settings: InfraSettings,
    *,
    master: str = "local[2]",
    driver_memory: str = "2g",
    shuffle_partitions: int = 4,
    ui: bool = False,
) -> dict[str, str]:
    """Every Spark setting `build_spark` applies, as plain strings (inspectable without a JVM)."""
    s3a = "spark.hadoop.fs.s3a."
    return {
        "spark.master": master,
        # Read by spark-submit before the JVM starts: pyspark passes builder settings to it.
        "spark.driver.memory": driver_memory,
        "spark.driver.bindAddress": settings.host,
        "spark.driver.host": settings.host,
        "spark.ui.enabled": str(ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": DRIVER_JAVA_OPTIONS,
        **_jar_conf(settings, master),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # The default 200 partitions means 200 tiny tasks and files for our small local batches.
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        # Delta rebuilds a table's state from its log with 50 tasks by default, and the lake writer's
        # idempotent appends (txnAppId) rebuild it at every write. One task per core: measured here, an
        # append of 300 rows took 1.6 s with 4 tasks and 1.1 s with 1, and `make bench-lake`'s freshness p50
        # went from 42-49 s (4 tasks, 3 runs) to 31-32 s (1 and 2 tasks, 3 runs) under the same load.
        "spark.databricks.delta.snapshotPartitions": str(SNAPSHOT_PARTITIONS),
        # Delta 4.4 ignores the retention given to VACUUM (other than 0 h) unless told not to, and keeps
        # unreferenced files for the table property `delta.deletedFileRetentionDuration` instead: the
        # nightly job's VIGIL_NIGHTLY_VACUUM_RETAIN_HOURS would otherwise do nothing.
        "spark.databricks.delta.vacuum.retentionWindowIgnore.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        # Otherwise a `spark-warehouse` folder appears in whatever directory the job runs from.
        "spark.sql.warehouse.dir": str(settings.data_dir / "spark-warehouse"),
        f"{s3a}endpoint": f"http://{settings.minio_endpoint}",
        # MinIO accepts any region; naming one stops S3A guessing (its fallback also turns on cross-region access).
        f"{s3a}endpoint.region": "us-east-1",
        f"{s3a}path.style.access": "true",  # no per-bucket host names (lake.localhost) exist here
        f"{s3a}connection.ssl.enabled": "false",
        # Only the static keys: a missing key then fails at once and says so, where the default chain
        # would go on to environment variables and the EC2 metadata endpoint (slower, vaguer error).
        f"{s3a}aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        f"{s3a}access.key": settings.minio_root_user,
        f"{s3a}secret.key": settings.minio_root_password.get_secret_value(),
    }


def build_spark(
    app_name: str,
    settings: InfraSettings | None = None,
    *,
    master: str = "local[2]",
    driver_memory: str = "2g",
    shuffle_partitions: int = 4,
    ui: bool = False,
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Start (or return the running) SparkSession; `conf` overrides any setting of `spark_conf`.

    Spark keeps one session per process: a second call returns the first session, and settings
    read at JVM start (memory, jars, master) keep their first values.
    """
    from pyspark.sql import SparkSession

    settings = settings or get_settings()
    # Spark binds its driver (and the UI, when enabled) to this address rather than to all interfaces.
    os.environ.setdefault("SPARK_LOCAL_IP", settings.host)
    builder = SparkSession.builder.appName(app_name)
    base = spark_conf(
        settings, master=master, driver_memory=driver_memory, shuffle_partitions=shuffle_partitions, ui=ui
    )
    for key, value in {**base, **(conf or {})}.items():
        builder = builder.config(key, value)
    with _jvm_ignoring_sigterm():
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


@contextmanager
def _jvm_ignoring_sigterm() -> Iterator[None]:
    """Start the driver JVM with SIGTERM ignored, so a stop reaches Python alone and Python stops Spark.

    `make down` signals a job's whole process group, JVM included. The JVM's shutdown hooks then tore
    Spark down under the job: the lake writer's `query.stop()` met a dead gateway (ConnectionRefused)
    and reported that as its failure. A JVM started with SIGTERM ignored keeps it ignored (as under
    nohup), and it still ends with its Python process (pyspark's gateway exits when its stdin closes).
    pyspark does the same for SIGINT. SIGTERM is blocked meanwhile, not lost: one sent during the JVM's
    start is delivered to this process's own handler when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():  # signal dispositions: main thread only
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)  # None: set outside Python
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
