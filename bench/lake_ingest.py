"""`make bench-lake` (part 1): the streaming lake writer's ingest rate, and freshness from gateway to Trino.

1. Ingest: a backlog of synthetic clean records (`CleanReadingBatch`, site
   `bench-lake-<id>`) is produced straight to readings.clean.v1 while the writer
   runs; rate = sample rows / (last row visible in Trino - first record sent).
   Baseline in the same run: pyarrow writes the same rows, as one Parquet file
   with silver.readings' columns, to the same bucket (timed from table built to
   file closed; no Kafka, no Delta log, no dedupe, no Trino).
2. Freshness: one stream worker runs; simulated 100-sample packages are sent at
   a steady rate; each package's latency is from just before `produce` to the
   first Trino poll (every 0.5 s) that returns it from silver.packages.
The benchmark's rows stay in the lake (site `bench-lake-*`), like any plant's.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.table import Table

from bench import machine
from bench.kafka_io import Delivery, flush, gateway_producer, produce
from bench.workload import pace, workload
from contracts import CleanReadingBatch, ClockSource, QualityCode
from contracts import avro as avro_codec
from contracts.metadata import Quantity
from infra.settings import InfraSettings, get_settings
from infra.streams_worker import end_offsets, stream_worker
from jobs.lake.catalog import connect
from jobs.lake.settings import LakeSettings
from jobs.lake.status import fresh_status

console = Console(soft_wrap=True)
RESULTS = Path(__file__).resolve().parent / "results"


def _count(settings: InfraSettings, sql: str) -> int:
    with connect(settings, user="vigil-bench") as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        return int(cursor.fetchall()[0][0])


def clean_records(site: str, records: int, samples: int, sensors: int = 10) -> list[CleanReadingBatch]:
    """Synthetic clean records: `sensors` sensors on 5 machines, 1 kHz, consecutive windows."""
    ids = [uuid.uuid4() for _ in range(sensors)]
    start = round((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1e6)
    rng = np.random.default_rng(7)
    out = []
    now = datetime.now(UTC)
    for i in range(records):
        t0 = start + (i // sensors) * samples * 1000
        t = (t0 + np.arange(samples) * 1000).tolist()
        out.append(
            CleanReadingBatch.model_construct(
                package_id=uuid.uuid4(),
                gateway_id=f"gw-{site}",
                sensor_id=ids[i % sensors],
                asset_id=f"{site}-m{i % sensors // 2}",
                site=site,
                location_on_machine="bench",
                quantity=Quantity.ACCELERATION,
                unit="m/s2",
                clock_source=ClockSource.NTP,
                clock_offset_ms=0.0,
                t_raw_us=t,
                t_us=t,
                v=rng.normal(0.0, 1.0, samples).round(4).tolist(),
                quality=[QualityCode.OK] * samples,
                dropped={},
                features={},
                claim_uri=None,
                missing_samples=0,
                source_topic="edge.packages.v1",
                source_partition=0,
                source_offset=i,
                received_at=now,
                processed_at=now,
            )
        )
    return out


def arrow_rows(records: list[CleanReadingBatch]) -> pa.Table:
    """silver.readings' columns for `records`, built with numpy (what a plain Parquet writer would get)."""
    n = [len(r.v) for r in records]

    def rep(values: list[str]) -> Any:
        return np.repeat(np.asarray(values, dtype=object), n)

    t_us = np.concatenate([np.asarray(r.t_us, dtype=np.int64) for r in records])
    t = pa.array(t_us, pa.timestamp("us", tz="UTC"))
    received = pa.array(np.repeat([r.received_at for r in records], n), pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            "package_id": rep([str(r.package_id) for r in records]),
            "sample_index": np.concatenate([np.arange(k, dtype=np.int32) for k in n]),
            "sensor_id": rep([str(r.sensor_id) for r in records]),
            "asset_id": rep([r.asset_id for r in records]),
            "site": rep([r.site for r in records]),
            "location_on_machine": rep([r.location_on_machine for r in records]),
            "quantity": rep([r.quantity for r in records]),
            "unit": rep([r.unit for r in records]),
            "value": np.concatenate([np.asarray(r.v) for r in records]),
            "quality": rep(["ok"] * len(records)),
            "t": t,
            "t_us": t_us,
            "t_raw": t,
            "t_raw_us": t_us,
            "gateway_id": rep([r.gateway_id for r in records]),
            "clock_source": rep(["ntp"] * len(records)),
            "clock_offset_ms": np.zeros(sum(n)),
            "source_partition": np.repeat(np.asarray([r.source_partition for r in records], dtype=np.int32), n),
            "source_offset": np.repeat(np.asarray([r.source_offset for r in records], dtype=np.int64), n),
            "received_at": received,
            "processed_at": received,
            "year": pc.year(t).cast(pa.int32()),
            "month": pc.month(t).cast(pa.int32()),
        }
    )


def ingest(settings: InfraSettings, records: int, samples: int) -> dict[str, Any]:
    site = f"bench-lake-{uuid.uuid4().hex[:6]}"
    batch = clean_records(site, records, samples)
    encoded = [(str(r.sensor_id).encode(), avro_codec.encode(r)) for r in batch]
    rows = records * samples
    producer, delivery = gateway_producer(settings.kafka_bootstrap), Delivery()
    sent = time.time()
    for key, value in encoded:
        produce(producer, "readings.clean.v1", key, value, delivery)
    flush(producer, delivery, "clean records")
    produced = time.time()
    deadline = time.monotonic() + 900
    sql = f"SELECT count(*) FROM silver.readings WHERE site = '{site}'"  # noqa: S608 - our own id
    with console.status(f"waiting for {rows:,} rows in silver.readings ..."):
        while _count(settings, sql) < rows:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{site}: rows not visible in Trino within 900 s")
            time.sleep(0.5)
    visible = time.time()
    table = arrow_rows(batch)
    s3 = pafs.S3FileSystem(
        access_key=settings.minio_root_user,
        secret_key=settings.minio_root_password.get_secret_value(),
        endpoint_override=settings.minio_endpoint,
        scheme="http",
        region="us-east-1",
    )
    path = f"lake/bench-parquet/{site}/part-0.parquet"
    began = time.perf_counter()
    pq.write_table(table, path, filesystem=s3)
    parquet_s = time.perf_counter() - began
    s3.delete_dir(f"lake/bench-parquet/{site}")
    return {
        "site": site,
        "records": records,
        "samples_per_record": samples,
        "rows": rows,
        "produce_s": round(produced - sent, 2),
        "writer_s": round(visible - sent, 2),
        "writer_rows_per_s": round(rows / (visible - sent)),
        "parquet_s": round(parquet_s, 2),
        "parquet_rows_per_s": round(rows / parquet_s),
        "ratio": round((rows / (visible - sent)) / (rows / parquet_s), 4),
    }


def freshness(settings: InfraSettings, rate: float, seconds: float) -> dict[str, Any]:
    load = workload(seed=4242, samples=100, packages=int(rate * seconds) + 100)
    producer, delivery = gateway_producer(settings.kafka_bootstrap), Delivery()
    inputs = end_offsets(settings)  # the worker starts here, so it reads the metadata sent next
    for d in load.descriptions(datetime.now(UTC)):
        produce(producer, "edge.metadata.v1", str(d.sensor_id).encode(), d.to_wire(), delivery)
    flush(producer, delivery, "metadata")
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    count = int(rate * seconds)
    started_at = datetime.now(UTC)
    with stream_worker(settings, settings.log_dir, start_at=inputs):
        started = time.monotonic()
        last_poll = 0.0
        since = f"from_iso8601_timestamp('{started_at.isoformat()}')"
        sql = f"SELECT package_id FROM silver.packages WHERE site = 'bench' AND received_at >= {since}"  # noqa: S608
        i = 0
        deadline = time.monotonic() + seconds + 180
        while (i < count or len(seen) < count) and time.monotonic() < deadline:
            if i < count:
                pace(i, started, rate)
                message = load.message(i)
                sent[str(message.package_id)] = time.time()
                produce(producer, "edge.packages.v1", message.key, message.value, delivery)
                i += 1
            else:
                time.sleep(0.1)
            if time.monotonic() - last_poll >= 0.5:
                last_poll = time.monotonic()
                now = time.time()
                with connect(settings, user="vigil-bench") as connection:
                    cursor = connection.cursor()
                    cursor.execute(sql)
                    for (package_id,) in cursor.fetchall():
                        if package_id in sent:
                            seen.setdefault(package_id, now)
        flush(producer, delivery, "packages")
    latencies = [seen[p] - sent[p] for p in seen]
    p50, p95 = np.percentile(latencies, [50, 95]) if latencies else (float("nan"), float("nan"))
    return {
        "packages": count,
        "rate_per_s": rate,
        "seen": len(seen),
        "p50_s": round(float(p50), 2),
        "p95_s": round(float(p95), 2),
        "max_s": round(max(latencies), 2) if latencies else None,
        "trigger_s": LakeSettings().trigger_seconds,
        "poll_s": 0.5,
    }


def main(
    records: Annotated[int, typer.Option(help="clean records in the ingest backlog")] = 2000,
    samples: Annotated[int, typer.Option(help="samples per clean record")] = 1000,
    rate: Annotated[float, typer.Option(help="packages/s in the freshness phase")] = 10.0,
    seconds: Annotated[float, typer.Option(help="length of the freshness phase")] = 60.0,
) -> None:
    settings = get_settings()
    if fresh_status(settings) is None:
        console.print("[red]the lake writer is not running: `make lake` first (`make bench-lake` does)[/]")
        raise typer.Exit(1)
    result: dict[str, Any] = {"machine": machine.describe(settings), "started_at": datetime.now(UTC).isoformat()}
    result["ingest"] = ingest(settings, records, samples)
    result["freshness"] = freshness(settings, rate, seconds)
    ing, fresh = result["ingest"], result["freshness"]
    table = Table("lake ingest", "rows", "seconds", "rows/s", title="streaming writer vs plain Parquet (pyarrow)")
    table.add_row(
        "streaming writer (Kafka -> Delta -> visible in Trino)",
        f"{ing['rows']:,}",
        str(ing["writer_s"]),
        f"{ing['writer_rows_per_s']:,}",
    )
    table.add_row(
        "pyarrow write_table, same rows, same bucket",
        f"{ing['rows']:,}",
        str(ing["parquet_s"]),
        f"{ing['parquet_rows_per_s']:,}",
    )
    console.print(table)
    console.print(f"writer / Parquet: {ing['ratio']}")
    fresh_table = Table(
        "packages", "p50 s", "p95 s", "max s", "trigger s", title="freshness: gateway send -> row in Trino"
    )
    fresh_table.add_row(
        f"{fresh['seen']}/{fresh['packages']} at {fresh['rate_per_s']}/s",
        str(fresh["p50_s"]),
        str(fresh["p95_s"]),
        str(fresh["max_s"]),
        str(fresh["trigger_s"]),
    )
    console.print(fresh_table)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"lake-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2))
    console.print(f"written: {out}")


if __name__ == "__main__":
    typer.run(main)
