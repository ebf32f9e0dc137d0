"""The measured phases: stage throughput on a backlog, the bare-consumer baseline, latency at a paced rate."""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
from confluent_kafka import Producer

from bench import kafka_io
from bench.kafka_io import Delivery, Offsets
from bench.machine import cpu_seconds
from bench.workload import Workload, pace
from contracts import Alert, CleanReadingBatch

PACKAGES, CLEAN, ALERTS = "edge.packages.v1", "readings.clean.v1", "alerts.v1"
IN_TOTAL, OUT_TOTAL = "vigil_stream_messages_in_total", "vigil_stream_messages_out_total"
DRAIN_TIMEOUT_S: Final = 600.0


@dataclass(frozen=True)
class Worker:
    """What a phase needs of the running stream worker."""

    pid: int
    metrics_port: int
    bootstrap: str


def wait_for(worker: Worker, name: str, topic: str, at_least: float, timeout_s: float) -> None:
    """Poll the worker's counters (a cheap HTTP GET every 0.2 s) until `name{topic}` reaches `at_least`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if kafka_io.total(kafka_io.scrape(worker.metrics_port), name, topic=topic) >= at_least:
            return
        time.sleep(0.2)
    raise RuntimeError(f"worker did not reach {name}{{topic={topic}}} >= {at_least} within {timeout_s} s")


@dataclass(frozen=True)
class StageRun:
    samples: int
    since: Offsets  # the phase's range of edge.packages.v1, for the baseline to read again
    until: Offsets
    result: dict[str, Any]


def stage_throughput(worker: Worker, producer: Producer, load: Workload, count: int) -> StageRun:
    """Produce `count` packages as fast as possible, then time the worker draining them.

    Timed: from the first to the last `processed_at` (the worker's clock when a
    package enters clock/quality/enrich/alerts, after validation and dedupe)
    among the packages it processed after the producer's flush returned. Before
    that the worker shares the CPU with the producer; after it, the worker works
    through a backlog alone, so the interval is its maximum rate. Rate = (k - 1)
    packages x samples / interval, k = packages in the interval.
    """
    messages = load.prebuilt(count)
    ours = {str(m.package_id) for m in messages}
    clean_since, since = kafka_io.ends(worker.bootstrap, CLEAN), kafka_io.ends(worker.bootstrap, PACKAGES)
    before = kafka_io.scrape(worker.metrics_port)
    delivery = Delivery()
    started = time.time()
    for m in messages:
        kafka_io.produce(producer, PACKAGES, m.key, m.value, delivery)
    kafka_io.flush(producer, delivery, "benchmark packages")
    flushed, cpu_flushed = time.time(), cpu_seconds(worker.pid)
    until = kafka_io.ends(worker.bootstrap, PACKAGES)
    in_range = sum(until[p] - o for p, o in since.items())
    wait_for(worker, IN_TOTAL, PACKAGES, kafka_io.total(before, IN_TOTAL, topic=PACKAGES) + in_range, DRAIN_TIMEOUT_S)
    wait_for(worker, OUT_TOTAL, CLEAN, kafka_io.total(before, OUT_TOTAL, topic=CLEAN) + count, 60)
    drained, cpu_drained = time.time(), cpu_seconds(worker.pid)
    after = kafka_io.scrape(worker.metrics_port)

    records = kafka_io.read_clean(worker.bootstrap, clean_since, kafka_io.ends(worker.bootstrap, CLEAN))
    done = sorted(r["processed_at"].timestamp() for pid, r in records.items() if pid in ours)
    timed = [t for t in done if t >= flushed]
    interval = timed[-1] - timed[0] if len(timed) > 1 else float("nan")
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    return StageRun(
        load.samples,
        since,
        until,
        {
            "packages": count,
            "clean_records": len(done),
            "foreign_messages_in_range": in_range - count,
            "mean_message_bytes": round(sum(len(m.value) for m in messages) / count),
            "produce_seconds": round(flushed - started, 3),
            "timed_packages": len(timed),
            "timed_seconds": round(interval, 3),
            "packages_per_s": round((len(timed) - 1) / interval, 1),
            "samples_per_s": round((len(timed) - 1) * load.samples / interval),
            # CPU share of one core, flush -> all counted: includes up to 0.2 s of polling slack at the end.
            "worker_cpu_share": round((cpu_drained - cpu_flushed) / (drained - flushed), 2),
            "drain_window_epoch_s": [round(flushed, 3), round(drained, 3)],
            "samples_graded": round(sum(v for (n, _), v in delta.items() if n == "vigil_stream_samples_total")),
            "dead_letters": round(sum(v for (n, _), v in delta.items() if n == "vigil_stream_dead_letters_total")),
            "parked": round(delta.get(("vigil_stream_parked_total", ()), 0.0)),
        },
    )


def consumer_baseline(bootstrap: str, run: StageRun, repeats: int) -> dict[str, Any]:
    """The same messages read by a bare confluent-kafka consumer that only json-decodes them.

    Timed like the stage: first to last message done, rate = (n - 1) x samples /
    interval. Repeated on fresh consumers (page cache warm for all: the stage just
    read the same data); the median is reported.
    """
    rates = []
    for _ in range(repeats):
        done = kafka_io.baseline(bootstrap, PACKAGES, run.since, run.until)
        rates.append((len(done) - 1) * run.samples / (done[-1] - done[0]))
    return {
        "samples_per_s": round(statistics.median(rates)),
        "packages_per_s": round(statistics.median(rates) / run.samples, 1),
        "runs_samples_per_s": [round(r) for r in rates],
        "messages": sum(run.until[p] - o for p, o in run.since.items()),
    }


def latency(worker: Worker, producer: Producer, load: Workload, rate: float, seconds: float) -> dict[str, Any]:
    """Paced packages at `rate`/s for `seconds`; gateway send -> receipt on readings.clean.v1 and alerts.v1.

    Send time: time.time() just before produce() (packages are built just in time,
    so sent_at in the package is the same instant). Receipt: time.time() when a
    plain consumer in this process gets the record, i.e. what a downstream reader
    sees; the producer's linger (5 ms) and the consumer's fetch are included.
    """
    count = max(1, round(rate * seconds))
    expected_alerts = load.expected_alerts(count)
    since = {t: kafka_io.ends(worker.bootstrap, t) for t in (CLEAN, ALERTS)}
    receiver = kafka_io.Receiver(worker.bootstrap, since, max_seconds=seconds + DRAIN_TIMEOUT_S)
    receiver.start()
    time.sleep(1.0)  # let the receiver's assignment settle before the first send
    sent: dict[str, float] = {}
    ends_by_sensor: dict[uuid.UUID, list[tuple[int, float]]] = {}
    delivery = Delivery()
    started = time.monotonic()
    for i, m in enumerate(load.alerting(count)):
        pace(i, started, rate)
        at = time.time()
        kafka_io.produce(producer, PACKAGES, m.key, m.value, delivery)
        sent[str(m.package_id)] = at
        ends_by_sensor.setdefault(m.sensor_id, []).append((m.window_end_us, at))
    send_seconds = time.monotonic() - started
    kafka_io.flush(producer, delivery, "latency packages")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (receiver.count(CLEAN) < count or receiver.count(ALERTS) < expected_alerts):
        time.sleep(0.2)
    time.sleep(1.0)  # a late extra alert would show up in the counts below
    receiver.stopping.set()
    receiver.join(30)

    clean_ms: list[float] = []
    alert_ms, raised_ms, kinds = _alerts(receiver.received, ends_by_sensor, load.window_s)
    for topic, received, value in receiver.received:
        if topic == CLEAN:
            pid = str(kafka_io.record(CleanReadingBatch, value)["package_id"])
            if pid in sent:
                clean_ms.append((received - sent.pop(pid)) * 1000)
    return {
        "samples_per_package": load.samples,
        "target_packages_per_s": round(rate, 1),
        "achieved_packages_per_s": round(count / send_seconds, 1),
        "seconds": round(send_seconds, 1),
        "packages": count,
        "sensors": len(load.sensors),
        "clean": {"missing": len(sent), **_percentiles(clean_ms)},
        "alerts": {"expected": expected_alerts, "by_rule_state": kinds}
        | _percentiles(alert_ms)
        | {"raised_at_" + k: v for k, v in _percentiles(raised_ms).items() if k != "count"},
    }


def _alerts(
    received: list[tuple[str, float, bytes]], ends_by_sensor: dict[uuid.UUID, list[tuple[int, float]]], window_s: float
) -> tuple[list[float], list[float], dict[str, int]]:
    """Receipt and raised_at latency of each alert, from the send of the package that raised it.

    An alert's evidence window ends where its triggering package's window ends
    (shifted by the gateway's reported NTP offset, a few ms): the package of the
    same sensor with the nearest window end within half a window is the trigger.
    """
    receipt: list[float] = []
    raised: list[float] = []
    kinds: dict[str, int] = {}
    for topic, at, value in received:
        if topic != ALERTS:
            continue
        alert = kafka_io.record(Alert, value)
        sensor = alert.get("sensor_id")
        candidates = ends_by_sensor.get(uuid.UUID(str(sensor))) if sensor else None
        if not candidates:
            continue  # not one of ours
        end_us = round(_utc(alert["window_end"]).timestamp() * 1e6)
        gap, sent = min((abs(e - end_us), s) for e, s in candidates)
        if gap > window_s * 1e6 / 2:
            continue
        key = f"{alert['rule']}/{alert['state']}"
        kinds[key] = kinds.get(key, 0) + 1
        receipt.append((at - sent) * 1000)
        raised.append((_utc(alert["raised_at"]).timestamp() - sent) * 1000)
    return receipt, raised, kinds


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _percentiles(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    p50, p99 = np.percentile(ms, [50, 99])
    return {
        "count": len(ms),
        "p50_ms": round(float(p50), 1),
        "p99_ms": round(float(p99), 1),
        "max_ms": round(max(ms), 1),
    }
