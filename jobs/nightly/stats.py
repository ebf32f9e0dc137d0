"""gold.daily_sensor_stats for one UTC day, computed by Spark from silver.readings and silver.packages.

Definitions (also in docs/nightly.md):
- samples, min, max, mean: over the day's clean samples (by corrected time `t`).
- std: sample standard deviation (n - 1); rms: sqrt(mean(v^2)); crest factor: max |v| / rms (null if rms is 0).
- p50/p95/p99: exact percentiles with linear interpolation (Spark `percentile`, numpy's default).
- kurtosis: excess kurtosis, population moments (m4 / m2^2 - 3; Spark `kurtosis`, scipy's default).
- share_<code>: that quality code's share of every graded sample of the packages whose first clean
  sample falls on the day (ok = clean samples; the others were dropped from the clean stream and
  counted per package); graded_samples is their sum, missing_samples the gaps against the declared rate.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from contracts import QualityCode
from jobs.lake.tables import SILVER_PACKAGES, SILVER_READINGS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def day_readings(spark: SparkSession, root: str, day: date) -> DataFrame:
    """The day's clean samples; the year/month partitions prune the scan to the day's month."""
    return (
        spark.read.format("delta")
        .load(SILVER_READINGS.s3a(root))
        .where((F.col("year") == day.year) & (F.col("month") == day.month))
        .where(F.to_date("t") == F.lit(day))
    )


def daily_sensor_stats(spark: SparkSession, root: str, day: date) -> DataFrame:
    readings = day_readings(spark, root, day)
    rms = F.sqrt(F.avg(F.col("value") * F.col("value")))
    stats = readings.groupBy("sensor_id").agg(
        F.first("asset_id").alias("asset_id"),
        F.first("site").alias("site"),
        F.first("quantity").alias("quantity"),
        F.first("unit").alias("unit"),
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
    packages = (
        spark.read.format("delta")
        .load(SILVER_PACKAGES.s3a(root))
        .where(F.to_date("first_t") == F.lit(day))
        .where(F.col("ok_samples") > 0)  # smart-data and claim-check packages carry no samples to grade
    )
    counted = {
        code.value: F.col("ok_samples").cast("long")
        if code is QualityCode.OK
        else F.coalesce(F.col("dropped")[code.value], F.lit(0)).cast("long")
        for code in QualityCode
    }
    per_package = packages.select(
        "sensor_id", "missing_samples", *[column.alias(name) for name, column in counted.items()]
    )
    graded = sum((F.col(code.value) for code in QualityCode), F.lit(0))
    quality = per_package.groupBy("sensor_id").agg(
        *[F.sum(code.value).alias(code.value) for code in QualityCode],
        F.sum("missing_samples").alias("missing_samples"),
        F.count("*").alias("packages"),
    )
    quality = quality.withColumn("graded_samples", graded)
    shares = [
        (F.col(code.value) / F.nullif(F.col("graded_samples"), F.lit(0))).alias(f"share_{code.value}")
        for code in QualityCode
    ]
    joined = stats.join(quality, "sensor_id", "left")
    return joined.select(
        "sensor_id",
        "asset_id",
        "site",
        "quantity",
        "unit",
        "samples",
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
