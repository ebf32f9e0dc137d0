"""`make bench-rest`: the REST broker's POST /topic/{topic} against a bare confluent-kafka producer.

Both send the same 1000-sample packages (the gateway simulator's, ~20 KB of
JSON each) to edge.packages.v1 with acks=all, in the same run:

- REST: one broker process (one uvicorn worker, HTTPS, a token, full contract
  validation, provenance headers, audit event) fed by an httpx client in this
  process; a request's latency is from send to the 202 (after Kafka's ack).
- Baseline: a confluent-kafka producer in this process with the broker's own
  producer settings; a message's latency is from `produce` to its delivery
  callback.

Two shapes: "max rate" (REST with `--concurrency` requests in flight vs the
producer with everything in flight) and "one at a time" (one request at a time
vs produce + flush per message). Client and broker share the machine's cores,
so the client's own cost is in the REST numbers.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import numpy as np
import typer
from confluent_kafka import KafkaError, Message, Producer
from rich.console import Console
from rich.table import Table

from bench import machine
from bench.workload import workload
from connectors.rest.kafka import producer_config
from infra.rest_broker import Broker, running_broker
from infra.settings import InfraSettings, get_settings

console = Console(soft_wrap=True)
RESULTS = Path(__file__).resolve().parent / "results"
TOPIC = "edge.packages.v1"


def _summary(latencies: list[float], seconds: float) -> dict[str, Any]:
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "seconds": round(seconds, 3),
        "per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


async def _rest(broker: Broker, token: str, bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=broker.url, verify=broker.tls(), limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                began = time.perf_counter()
                response = await client.post(f"/topic/{TOPIC}", content=body, headers=headers)
                if response.status_code != 202:
                    raise RuntimeError(f"REST answered {response.status_code}: {response.text[:300]}")
                latencies.append(time.perf_counter() - began)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return _summary(latencies, time.perf_counter() - started)


def _producer(settings: InfraSettings) -> Producer:
    # The broker's own producer settings, so only the HTTP layer differs.
    return Producer({**producer_config(settings.kafka_bootstrap, "vigil-bench-baseline"), "log_level": 4})


def _baseline(settings: InfraSettings, messages: list[tuple[bytes, bytes]], one_at_a_time: bool) -> dict[str, Any]:
    producer = _producer(settings)
    latencies: list[float] = []
    errors: list[str] = []

    def callback(began: float) -> Any:
        def done(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(str(err))
            latencies.append(time.perf_counter() - began)

        return done

    started = time.perf_counter()
    for key, value in messages:
        while True:
            try:
                producer.produce(TOPIC, key=key, value=value, on_delivery=callback(time.perf_counter()))
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
        if one_at_a_time:
            producer.flush(60)
    producer.flush(120)
    seconds = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"baseline: {len(errors)} failed: {errors[:3]}")
    return _summary(latencies, seconds)


def main(
    packages: Annotated[int, typer.Option(help="packages per max-rate phase")] = 2000,
    sequential: Annotated[int, typer.Option(help="packages per one-at-a-time phase")] = 300,
    concurrency: Annotated[int, typer.Option(help="REST requests in flight in the max-rate phase")] = 8,
    samples: Annotated[int, typer.Option(help="samples per package")] = 1000,
) -> None:
    settings = get_settings()
    load = workload(seed=5150, samples=samples, packages=2 * (packages + sequential))
    built = load.prebuilt(2 * (packages + sequential))
    # Separate packages per phase (so no phase resends another's ids); same sizes throughout.
    rest_max, base_max = built[:packages], built[packages : 2 * packages]
    rest_one, base_one = built[2 * packages : 2 * packages + sequential], built[2 * packages + sequential :]
    size = statistics.mean(len(m.value) for m in built)
    console.print(f"{len(built)} packages of {samples} samples, {size / 1024:.1f} KiB of JSON each")
    with (
        tempfile.TemporaryDirectory(prefix="vigil-bench-rest-") as work,
        running_broker(
            settings, Path(work), VIGIL_REST_RATE_PER_S="1000000", VIGIL_REST_RATE_BURST="1000000"
        ) as broker,
    ):
        token = broker.token("bench", "--role", "admin", "--topic", TOPIC)
        asyncio.run(_rest(broker, token, [m.value for m in built[:50]], concurrency))  # warm-up (connections, JIT-free)
        console.print("REST, max rate ...")
        rest_fast = asyncio.run(_rest(broker, token, [m.value for m in rest_max], concurrency))
        console.print("REST, one at a time ...")
        rest_slow = asyncio.run(_rest(broker, token, [m.value for m in rest_one], 1))
    console.print("baseline producer, max rate and one at a time ...")
    base_fast = _baseline(settings, [(m.key, m.value) for m in base_max], one_at_a_time=False)
    base_slow = _baseline(settings, [(m.key, m.value) for m in base_one], one_at_a_time=True)
    result: dict[str, Any] = {
        "benchmark": "rest-ingest",
        "machine": machine.describe(settings),
        "samples_per_package": samples,
        "package_bytes_mean": round(size),
        "concurrency": concurrency,
        "max_rate": {
            "rest": rest_fast,
            "baseline": base_fast,
            "ratio": round(rest_fast["per_s"] / base_fast["per_s"], 3),
        },
        "one_at_a_time": {
            "rest": rest_slow,
            "baseline": base_slow,
            "ratio": round(rest_slow["per_s"] / base_slow["per_s"], 3),
        },
    }
    table = Table(title=f"POST /topic/{TOPIC}, {samples}-sample packages, one broker worker")
    for column in ("shape", "path", "requests/s", "p50 ms", "p99 ms", "REST / baseline"):
        table.add_column(column)
    for shape in ("max_rate", "one_at_a_time"):
        part = result[shape]
        for path in ("rest", "baseline"):
            row = part[path]
            ratio = f"{part['ratio']:.3f}" if path == "rest" else ""
            table.add_row(shape, path, f"{row['per_s']:.0f}", f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}", ratio)
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"rest-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2))
    console.print(f"written to {out}")


if __name__ == "__main__":
    typer.run(main)
