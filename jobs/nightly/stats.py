"""gold.daily_sensor_stats for one UTC day, computed by Spark from silver.readings, silver.packages and
bronze.flagged_samples.

Definitions (also in docs/nightly.md):
- samples, min, max, mean: over the day's clean samples (by corrected time `t`).
- std: sample standard deviation (n - 1); rms: sqrt(mean(v^2)); crest factor: max |v| / rms (null if rms is 0).
- p50/p95/p99: exact percentiles with linear interpolation (Spark `percentile`, numpy's default).
- kurtosis: excess kurtosis, population moments (m4 / m2^2 - 3; Spark `kurtosis`, scipy's default).
- share_<code>: that quality code's share of every graded sample of the packages dated on the day (ok = clean
  samples; the others were dropped from the clean stream and counted per package); graded_samples is their sum,
  missing_samples the gaps against the declared rate. A package is dated by its first clean sample, or, when
  every sample was flagged, by its first flagged sample (bronze.flagged_samples). Packages without samples
  (smart-data features, claim checks) are not graded.
- A sensor whose packages of the day were all flagged (a dead or broken sensor) still gets a row: samples = 0,
  the statistics null, the shares as above.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from contracts import QualityCode
from jobs.lake.tables import BRONZE_FLAGGED_SAMPLES, SILVER_PACKAGES, SILVER_READINGS
from jobs.nightly.maintenance import is_table

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

IDENTITY = ("asset_id", "site", "quantity", "unit")


def day_readings(spark: SparkSession, root: str, day: date) -> DataFrame:
    """The day's clean samples; the year/month partitions prune the scan to the day's month."""
    return (
        spark.read.format("delta")
        .load(SILVER_READINGS.s3a(root))
        .where((F.col("year") == day.year) & (F.col("month") == day.month))
        .where(F.to_date("t") == F.lit(day))
    )


def day_packages(spark: SparkSession, root: str, day: date) -> DataFrame:
    """The packages graded on `day`, with `first_t` the time they are dated by.

    A package is dated by its first clean sample (`first_t`); one whose samples were all flagged has no
    `first_t` and is dated by its first flagged sample instead, else its drops would count on no day. Both
    scans are pruned to received_date >= day - 1: a sample is received after it is taken (the stream stage
    rejects samples more than minutes ahead of the broker's time), and a day covers any clock correction.
    """
    since = F.lit(day - timedelta(days=1))
    packages = spark.read.format("delta").load(SILVER_PACKAGES.s3a(root)).where(F.col("received_date") >= since)
    dated = packages.where(F.col("ok_samples") > 0)
    if is_table(spark, BRONZE_FLAGGED_SAMPLES, root):  # a young lake may not have it yet: clean packages only
        dropped = F.aggregate(F.map_values("dropped"), F.lit(0).cast("long"), lambda total, n: total + n)
        first_flagged = (
            spark.read.format("delta")
            .load(BRONZE_FLAGGED_SAMPLES.s3a(root))
            .where(F.col("received_date") >= since)
            .where(F.to_date("t") <= F.lit(day))  # a later sample cannot be a package's first one of the day
            .groupBy("package_id")
            .agg(F.min("t").alias("first_t"))
        )
        # Neither clean nor dropped samples: smart-data and claim-check packages, nothing to grade. A package
        # whose flagged record has not landed cannot be dated: it stays out (the ledger reports it missing).
        all_flagged = packages.where((F.col("ok_samples") == 0) & (dropped > 0)).drop("first_t")
        dated = dated.unionByName(all_flagged.join(first_flagged, "package_id"))
    return dated.where(F.to_date("first_t") == F.lit(day))


def daily_sensor_stats(spark: SparkSession, root: str, day: date) -> DataFrame:
    readings = day_readings(spark, root, day)
    rms = F.sqrt(F.avg(F.col("value") * F.col("value")))
    stats = readings.groupBy("sensor_id").agg(
        *[F.first(name).alias(name) for name in IDENTITY],
        F.count("*").alias("samples"),
        F.min("value").alias("min"),
        F.max("value").alias("max"),
        F.avg("value").alias("mean"),
        F.stddev_samp("value").alias("std"),
        rms.alias("rms"),
        F.percentile("value", F.lit(0.5)).alias("p50"),
        F.percentile("value", F.lit(0.95)).alias("p95"),
        F.percentile("value", F.lit(0.99)).alias("p99"),
        F.kurtosis("value").alias("kurtosis"),
        # try_divide: null for a day of all-zero values (an idle sensor), where ANSI mode's `/` would fail the run.
        F.try_divide(F.max(F.abs("value")), rms).alias("crest_factor"),
    )
    counted = {
        code.value: F.col("ok_samples").cast("long")
        if code is QualityCode.OK
        else F.coalesce(F.col("dropped")[code.value], F.lit(0)).cast("long")
        for code in QualityCode
    }
    per_package = day_packages(spark, root, day).select(
        "sensor_id", *IDENTITY, "missing_samples", *[column.alias(name) for name, column in counted.items()]
    )
    graded = sum((F.col(code.value) for code in QualityCode), F.lit(0))
    quality = per_package.groupBy("sensor_id").agg(
        # The sensor's identity also from its packages: a sensor with no clean sample has no readings.
        *[F.first(name).alias(f"package_{name}") for name in IDENTITY],
        *[F.sum(code.value).alias(code.value) for code in QualityCode],
        F.sum("missing_samples").alias("missing_samples"),
        F.count("*").alias("packages"),
    )
    quality = quality.withColumn("graded_samples", graded)
    shares = [
        (F.col(code.value) / F.nullif(F.col("graded_samples"), F.lit(0))).alias(f"share_{code.value}")
        for code in QualityCode
    ]
    # Full outer: a sensor whose packages of the day were all flagged has graded samples but no statistics.
    joined = stats.join(quality, "sensor_id", "full_outer")
    identity: list[Column] = [F.coalesce(name, f"package_{name}").alias(name) for name in IDENTITY]
    return joined.select(
        "sensor_id",
        *identity,
        F.coalesce("samples", F.lit(0)).cast("long").alias("samples"),
        "min",
        "max",
        "mean",
        "std",
        "rms",
        "p50",
        "p95",
        "p99",
        "kurtosis",
        "crest_factor",
        *shares,
        F.coalesce("graded_samples", F.lit(0)).cast("long").alias("graded_samples"),
        F.coalesce("missing_samples", F.lit(0)).cast("long").alias("missing_samples"),
        F.coalesce("packages", F.lit(0)).cast("long").alias("packages"),
        F.lit(day).alias("date"),
    )
