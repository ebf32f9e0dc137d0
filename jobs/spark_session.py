"""One SparkSession recipe for every job: local Spark writing Delta tables to MinIO and reading Kafka.

The settings are infra's `InfraSettings` (the same `VIGIL_*` variables): the MinIO credentials, the
Kafka address and the versions that key the jar cache then cannot drift between `make up` and a job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from infra import spark as spark_jars
from infra.settings import InfraSettings, get_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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
        # Local paths resolved by `python -m infra fetch`: no download and no Ivy at job start.
        "spark.jars": ",".join(str(p) for p in spark_jars.jar_paths(settings)),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # The default 200 partitions means 200 tiny tasks and files for our small local batches.
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        # Otherwise a `spark-warehouse` folder appears in whatever directory the job runs from.
        "spark.sql.warehouse.dir": str(settings.data_dir / "spark-warehouse"),
        f"{s3a}endpoint": f"http://{settings.minio_endpoint}",
        f"{s3a}endpoint.region": "us-east-1",  # MinIO ignores it; without it the SDK probes for one
        f"{s3a}path.style.access": "true",  # MinIO serves buckets as paths, not as host names
        f"{s3a}connection.ssl.enabled": "false",
        # Only the static keys: the default chain would also ask the EC2 metadata host and stall.
        f"{s3a}aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        f"{s3a}access.key": settings.minio_root_user,
        f"{s3a}secret.key": settings.minio_root_password.get_secret_value(),
    }


def build_spark(
    app_name: str,
    settings: InfraSettings | None = None,
    *,
    conf: Mapping[str, str] | None = None,
    **options: object,
) -> SparkSession:
    """Start (or return the running) SparkSession; `conf` overrides any setting of `spark_conf`.

    `options` go to `spark_conf` (master, driver_memory, shuffle_partitions, ui). Spark keeps one
    session per process: a second call returns the first session, whose JVM settings stay as they were.
    """
    from pyspark.sql import SparkSession

    settings = settings or get_settings()
    # Spark binds its driver (and the UI, when enabled) to this address rather than to all interfaces.
    os.environ.setdefault("SPARK_LOCAL_IP", settings.host)
    builder = SparkSession.builder.appName(app_name)
    for key, value in {**spark_conf(settings, **options), **(conf or {})}.items():  # type: ignore[arg-type]
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def s3a_uri(settings: InfraSettings, bucket: str, *parts: str) -> str:
    """`s3a://bucket/part/...` for a path in MinIO."""
    path = "/".join(p.strip("/") for p in parts if p)
    return f"s3a://{bucket}/{path}" if path else f"s3a://{bucket}"
