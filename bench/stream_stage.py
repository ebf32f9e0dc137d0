"""`make bench`: samples/s through the whole stream stage on one worker, against a bare-consumer baseline.

One run, one machine, one process tree:

1. A throw-away consumer group (`vigil-bench-<id>`) is started at the current
   end of the input topics, so earlier runs' backlog is not part of the work.
2. Metadata of the benchmark's sensors (gateway simulator plants, one per phase)
   is registered; one stream worker starts and loads it, then works through
   an untimed warm-up backlog.
3. For 100- and 1000-sample packages: a backlog is produced with the gateway's
   producer settings and the worker's drain of it is timed (see
   `phases.stage_throughput` for exactly what is timed).
4. Latency: 1000-sample packages paced at half the stage's measured maximum,
   some above a warning threshold so alerts fire; gateway send -> receipt on
   readings.clean.v1 and on alerts.v1, p50/p99 (see `phases.latency`).
5. The worker stops; a bare confluent-kafka consumer then reads each phase's
   messages again and json-decodes them (the baseline), with nothing else running.

A measurement, not a test: exits 0 whether or not the target ratio is met.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from bench import kafka_io, phases
from bench.faust_floor import faust_floor, pure_stage
from bench.machine import describe
from bench.workload import SENSORS, workload
from infra.settings import REPO_ROOT, InfraSettings, get_settings
from infra.streams_worker import INPUTS, end_offsets, start_group_at, stream_worker

TARGET_RATIO: Final = 0.5  # the target: stage >= half the baseline at 1000-sample packages
TARGET_SAMPLES: Final = 1000
SEEDS: Final = {100: 9100, 1000: 9101, "latency": 9102, "warmup": 9103}
# Untimed packages first: every phase shares the plant's two gateways, whose clock-skew windows (streams/clock.py,
# one per gateway and partition) and caches should not start empty in a timed phase.
WARMUP_PACKAGES: Final = 1200
LATENCY_MAX_RATE: Final = 1000.0  # packages/s; far above what one worker reaches with 1000-sample packages
RESULTS: Final = REPO_ROOT / "bench" / "results"
console = Console(width=120)


def run(settings: InfraSettings, counts: dict[int, int], latency_seconds: float, repeats: int) -> dict[str, Any]:
    started = time.monotonic()
    machine = describe(settings)  # before the run, so the load average is what the run started on
    bootstrap = settings.kafka_bootstrap
    app_id = f"vigil-bench-{uuid.uuid4().hex[:8]}"
    loads = {size: workload(SEEDS[size], size, n) for size, n in counts.items()}
    # The latency rate is only known after the 1000-sample phase: place the plant's data for the highest allowed.
    latency_load = workload(SEEDS["latency"], TARGET_SAMPLES, round(LATENCY_MAX_RATE * latency_seconds))
    warmup_load = workload(SEEDS["warmup"], 100, WARMUP_PACKAGES)
    producer = kafka_io.gateway_producer(bootstrap)
    # A new group starts at the inputs' current ends, skipping earlier runs' backlog.
    start_group_at(settings, app_id, end_offsets(settings, INPUTS))
    delivery = kafka_io.Delivery()
    now = datetime.now(UTC)
    sensors = [d for w in (*loads.values(), latency_load, warmup_load) for d in w.descriptions(now)]
    for d in sensors:
        kafka_io.produce(producer, "edge.metadata.v1", str(d.sensor_id).encode(), d.to_wire(), delivery)
    kafka_io.flush(producer, delivery, "sensor metadata")

    stage: dict[int, phases.StageRun] = {}
    with (
        tempfile.TemporaryDirectory(prefix="vigil-bench-") as datadir,
        stream_worker(
            settings,
            settings.log_dir,
            app_id,
            APP_DATADIR=datadir,  # Faust's data dir, kept out of the repo
        ) as worker,
    ):
        assert worker.proc is not None
        w = phases.Worker(worker.proc.pid, worker.metrics_port, bootstrap)
        phases.wait_for(w, phases.IN_TOTAL, "edge.metadata.v1", len(sensors), 120)
        console.print(f"warm-up: {WARMUP_PACKAGES} packages of 100 samples (untimed) ...")
        warmup = phases.stage_throughput(w, producer, warmup_load, WARMUP_PACKAGES).result
        for size, load in loads.items():
            console.print(f"stage: draining {counts[size]} packages of {size} samples ...")
            stage[size] = phases.stage_throughput(w, producer, load, counts[size])
        rate = min(stage[TARGET_SAMPLES].result["packages_per_s"] / 2, LATENCY_MAX_RATE)
        console.print(f"latency: {latency_seconds:.0f} s at {rate:.0f} packages/s (half the maximum) ...")
        latency = phases.latency(w, producer, latency_load, rate, latency_seconds)
        log = worker.log

    console.print("baseline: bare confluent-kafka consumer + json.loads over the same messages ...")
    throughput = []
    for size, st in stage.items():
        base = phases.consumer_baseline(bootstrap, st, repeats)
        ratio = st.result["samples_per_s"] / base["samples_per_s"]
        throughput.append({"samples_per_package": size, "stage": st.result, "baseline": base, "ratio": round(ratio, 3)})
    console.print("bounds: a Faust worker that only decodes (orjson, json.loads); the pure stage without Kafka ...")
    for t in throughput:
        size, st = t["samples_per_package"], stage[t["samples_per_package"]]
        messages = sum(st.until[p] - o for p, o in st.since.items())
        floor = {}
        for decoder in ("orjson", "json"):
            done = faust_floor(settings, st.since, messages, decoder)
            rate = (len(done) - 1) * size / (done[-1] - done[0])
            floor[decoder] = {
                "samples_per_s": round(rate),
                "ratio_to_baseline": round(rate / t["baseline"]["samples_per_s"], 3),
            }
        t["faust_floor"] = floor
        t["pure_stage"] = pure_stage(loads[size], min(messages, 500))
    at_target = next((t for t in throughput if t["samples_per_package"] == TARGET_SAMPLES), None)
    return {
        "benchmark": "stream-stage",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "machine": machine,
        "consumer_group": app_id,
        "sensors_per_phase": SENSORS,
        "method": {
            "stage": phases.stage_throughput.__doc__,
            "baseline": phases.consumer_baseline.__doc__,
            "latency": phases.latency.__doc__,
        },
        "warmup": {k: warmup[k] for k in ("packages", "packages_per_s", "samples_per_s")},
        "throughput": throughput,
        "target": {
            "ratio_at_least": TARGET_RATIO,
            "samples_per_package": TARGET_SAMPLES,
            "ratio": at_target["ratio"] if at_target else None,
            "met": bool(at_target and at_target["ratio"] >= TARGET_RATIO),
        },
        "latency": latency,
        "worker_log": str(log),
        "worker_warnings": warnings(log, throughput),
    }


def warnings(log: Path, throughput: list[dict[str, Any]]) -> dict[str, Any]:
    """WARNING/ERROR lines of the worker's log, grouped with numbers blanked, and Faust's producer-buffer waits.

    Faust logs 'producer buffer full' when more than 100 sends (outputs and
    changelog writes) are pending, then blocks the agent until some are sent and
    logs 'producer flush took <s>': time the stage was throttled. Waits are also
    added to each timed drain they ended in (log times are local, like time.time()).
    """
    kinds: Counter[str] = Counter()
    waits: list[tuple[float, float]] = []
    for line in log.read_text(errors="replace").splitlines():
        if flush := re.search(r"^\[([0-9-]+ [0-9:]+,[0-9]+)\].*producer flush took ([0-9.e-]+)", line):
            at = datetime.strptime(flush[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            waits.append((at, float(flush[2])))
        match = re.search(r"\[(WARNING|ERROR|CRITICAL)\]\s*(.*)", line)
        if match:
            text = re.sub(r"[0-9]+(\.[0-9]+)?", "#", match[2])[:160]
            kinds[f"{match[1]}: {text}"] += 1
    for t in throughput:
        start, end = t["stage"]["drain_window_epoch_s"]
        inside = [s for at, s in waits if start <= at <= end]
        t["stage"]["producer_buffer_waits"] = len(inside)
        t["stage"]["producer_buffer_wait_seconds"] = round(sum(inside), 3)
    return {
        "total": sum(kinds.values()),
        "top": dict(kinds.most_common(8)),
        "producer_buffer_waits": len(waits),
        "producer_buffer_wait_seconds": round(sum(s for _, s in waits), 3),
    }


def render(result: dict[str, Any], path: Path) -> None:
    m = result["machine"]
    console.print(
        f"\n[bold]Machine[/]: {m['cpu_model']}, {m['usable_cores']} cores, {m['memory_gib']} GiB, "
        f"{m['python']}, Java {_java_version(m['java'])}, Kafka {m['kafka']}, load {m['load_average_at_start']}"
    )
    table = Table(title="Stream stage vs bare consumer (samples/s, one worker)")
    # samples/s only (packages/s are in the JSON): the table must fit 120 columns.
    for col in ("samples/pkg", "stage samples/s", "timed", "worker CPU", "buffer waits", "baseline samples/s", "ratio"):
        table.add_column(col, justify="right", no_wrap=True)
    for t in result["throughput"]:
        s, b = t["stage"], t["baseline"]
        table.add_row(
            str(t["samples_per_package"]),
            f"{s['samples_per_s']:,}",
            f"{s['timed_packages']}/{s['packages']} pkgs, {s['timed_seconds']:.1f} s",
            f"{s['worker_cpu_share']:.0%} of a core",
            f"{s['producer_buffer_waits']}, {s['producer_buffer_wait_seconds']:.1f} s",
            f"{b['samples_per_s']:,}",
            f"{t['ratio']:.3f}",
        )
    console.print(table)
    bounds = Table(title="Where the time goes: microseconds per package, one core (lower bounds of the stage)")
    for col in ("samples/pkg", "baseline", "Faust floor, orjson", "Faust floor, json", "pure stage, no Kafka", "stage"):
        bounds.add_column(col, justify="right", no_wrap=True)
    for t in result["throughput"]:
        n = t["samples_per_package"]
        us = [
            n / t["baseline"]["samples_per_s"],
            n / t["faust_floor"]["orjson"]["samples_per_s"],
            n / t["faust_floor"]["json"]["samples_per_s"],
            n / t["pure_stage"]["samples_per_s"],
            n / t["stage"]["samples_per_s"],
        ]
        bounds.add_row(str(n), *(f"{x * 1e6:,.0f}" for x in us))
    console.print(bounds)
    lat = result["latency"]
    table = Table(
        title=f"Latency at half the maximum rate ({lat['achieved_packages_per_s']} pkg/s, {lat['seconds']} s)"
    )
    for col in ("gateway send ->", "records", "p50 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="right")
    c, a = lat["clean"], lat["alerts"]
    table.add_row("receipt on readings.clean.v1", str(c["count"]), str(c["p50_ms"]), str(c["p99_ms"]), str(c["max_ms"]))
    table.add_row(
        f"receipt on alerts.v1 ({a['expected']} expected)",
        str(a["count"]),
        str(a["p50_ms"]),
        str(a["p99_ms"]),
        str(a["max_ms"]),
    )
    table.add_row(
        "alert raised_at (worker clock)",
        str(a["count"]),
        str(a["raised_at_p50_ms"]),
        str(a["raised_at_p99_ms"]),
        str(a["raised_at_max_ms"]),
    )
    console.print(table)
    target = result["target"]
    verdict = "[green]met[/]" if target["met"] else "[red]NOT met[/]"
    console.print(
        f"Target (stage >= {target['ratio_at_least']} x baseline at {target['samples_per_package']}-sample packages): "
        f"{verdict} (ratio {target['ratio']})"
    )
    warn = result["worker_warnings"]
    console.print(
        f"Worker log warnings: {warn['total']} ({result['worker_log']}); Faust producer-buffer waits in the whole "
        f"run: {warn['producer_buffer_waits']}, {warn['producer_buffer_wait_seconds']} s"
    )
    for kind, n in warn["top"].items():
        console.print(f"  {n:>5} x {kind}")
    console.print(f"Took {result['duration_s']} s; results: {path}")


def _java_version(text: str) -> str:
    found = re.search(r'version "([^"]+)"', text)
    return found[1] if found else text


def main(
    packages_100: Annotated[int, typer.Option(min=100, help="backlog of 100-sample packages")] = 5000,
    packages_1000: Annotated[int, typer.Option(min=100, help="backlog of 1000-sample packages")] = 3000,
    latency_seconds: Annotated[float, typer.Option(min=5, max=300, help="paced latency phase")] = 20.0,
    baseline_repeats: Annotated[int, typer.Option(min=1, max=10)] = 3,
) -> None:
    """Run the stream-stage benchmark against the platform `make up` started; write bench/results/*.json."""
    result = run(get_settings(), {100: packages_100, 1000: packages_1000}, latency_seconds, baseline_repeats)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"stream-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    render(result, path)


if __name__ == "__main__":
    typer.run(main)
