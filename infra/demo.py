"""`make demo`: stream a simulated plant through the running platform and show what came out.

A stream worker (consumer group `vigil-streams`, state kept between demos) runs
for the duration; the simulated plant streams for `--seconds`; then everything
is read back from Kafka (nothing is taken on trust from the simulator): clean
readings, dead letters by reason, and alerts. A per-sensor summary of the clean
readings is written to a Delta table and queried through Trino. Until the
lakehouse writer lands, that summary table is the demo's own.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Annotated

import trino
import typer
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connectors.gateway.faults import FaultRates
from connectors.gateway.plant import PlantConfig, build_plant
from connectors.gateway.producer import run_simulation
from connectors.gateway.report import render
from connectors.gateway.settings import GatewaySettings
from contracts import Alert, CleanReadingBatch, DeadLetter
from contracts import avro as avro_codec
from infra.settings import InfraSettings, get_settings
from infra.streams_worker import stream_worker

console = Console(width=120)
PACKAGES, CLEAN, DEAD, ALERTS = "edge.packages.v1", "readings.clean.v1", "edge.deadletter.v1", "alerts.v1"
SUMMARY_TABLE = "bronze.demo_ingest_summary"
RATE = 40.0  # packages per second from the simulated plant
QUERY = (
    "SELECT machine_id, count(DISTINCT sensor_id) AS sensors, "
    "sum(packages) AS packages, sum(samples) AS samples, "
    "format_datetime(min(first_sample), 'HH:mm:ss.SSS') AS first_sample, "
    "format_datetime(max(last_sample), 'HH:mm:ss.SSS') AS last_sample "
    "FROM bronze.demo_ingest_summary WHERE run_id = ? GROUP BY machine_id ORDER BY machine_id"
)


@dataclass
class SensorTally:
    machine: str = ""
    site: str = ""
    quantity: str = ""
    unit: str = ""
    packages: int = 0
    samples: int = 0
    first_us: int | None = None
    last_us: int | None = None


@dataclass
class Outputs:
    clean: dict[uuid.UUID, SensorTally] = field(default_factory=lambda: defaultdict(SensorTally))
    dropped: Counter[str] = field(default_factory=Counter)
    clocks: dict[str, tuple[str, float]] = field(default_factory=dict)
    dead: Counter[str] = field(default_factory=Counter)
    alerts: list[Alert] = field(default_factory=list)


def _consumer(settings: InfraSettings, group: str | None = None) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group or f"vigil-demo-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "log_level": 4,
        }
    )


def _end_offsets(consumer: Consumer, topic: str) -> dict[int, int]:
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}


def _read(consumer: Consumer, topic: str, start: dict[int, int], end: dict[int, int]) -> list[bytes]:
    """Every message of `topic` between two offset snapshots."""
    wanted = {p: end[p] - start.get(p, 0) for p in end if end[p] > start.get(p, 0)}
    consumer.assign([TopicPartition(topic, p, start.get(p, 0)) for p in wanted])
    out: list[bytes] = []
    remaining, idle = sum(wanted.values()), 0
    while remaining > 0 and idle < 20:  # bounded: 20 empty polls of 0.5 s
        message = consumer.poll(0.5)
        if message is None or message.error() is not None:
            idle += 1
            continue
        partition, offset = message.partition(), message.offset()
        if partition is not None and offset is not None and offset < end[partition]:
            out.append(message.value() or b"")
            remaining -= 1
    consumer.unassign()
    return out


def _wait_caught_up(settings: InfraSettings, group: str, timeout_s: float = 180.0) -> bool:
    """True once the worker's committed offsets on the packages topic reach its end (bounded wait)."""
    consumer = _consumer(settings, group)
    try:
        end = _end_offsets(consumer, PACKAGES)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            committed = consumer.committed([TopicPartition(PACKAGES, p) for p in end], timeout=10)
            if all(tp.offset >= end[tp.partition] for tp in committed):
                return True
            time.sleep(1.0)
        return False
    finally:
        consumer.close()


def read_outputs(settings: InfraSettings, start: dict[str, dict[int, int]]) -> Outputs:
    consumer = _consumer(settings)
    out = Outputs()
    try:
        for raw in _read(consumer, CLEAN, start[CLEAN], _end_offsets(consumer, CLEAN)):
            batch = avro_codec.decode(CleanReadingBatch, raw)
            tally = out.clean[batch.sensor_id]
            tally.machine, tally.site, tally.quantity, tally.unit = (
                batch.asset_id,
                batch.site,
                batch.quantity.value,
                batch.unit,
            )
            tally.packages += 1
            tally.samples += len(batch.v)
            out.dropped.update(batch.dropped)
            out.clocks[batch.gateway_id] = (batch.clock_source.value, batch.clock_offset_ms)
            if batch.t_us:
                first, last = batch.t_us[0], batch.t_us[-1]
                tally.first_us = first if tally.first_us is None else min(tally.first_us, first)
                tally.last_us = last if tally.last_us is None else max(tally.last_us, last)
        for raw in _read(consumer, DEAD, start[DEAD], _end_offsets(consumer, DEAD)):
            out.dead[avro_codec.decode(DeadLetter, raw).reason.value] += 1
        out.alerts = [
            avro_codec.decode(Alert, raw)
            for raw in _read(consumer, ALERTS, start[ALERTS], _end_offsets(consumer, ALERTS))
        ]
    finally:
        consumer.close()
    return out


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _summarise_in_trino(settings: InfraSettings, run_id: str, out: Outputs) -> list[list[object]]:
    connection = trino.dbapi.connect(  # type: ignore[no-untyped-call]
        host=settings.host, port=settings.trino_port, user="vigil-demo", catalog="vigil"
    )
    cursor = connection.cursor()
    try:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {SUMMARY_TABLE} (run_id varchar, sensor_id varchar, machine_id varchar, "
            "site varchar, quantity varchar, unit varchar, packages bigint, samples bigint, "
            "first_sample timestamp(3) with time zone, last_sample timestamp(3) with time zone)"
        )
        cursor.fetchall()
        rows = [
            f"('{run_id}', '{sensor_id}', {_quote(t.machine)}, {_quote(t.site)}, {_quote(t.quantity)}, "
            f"{_quote(t.unit)}, {t.packages}, {t.samples}, "
            f"from_unixtime_nanos({t.first_us * 1000}), from_unixtime_nanos({t.last_us * 1000}))"
            for sensor_id, t in out.clean.items()
            if t.first_us is not None and t.last_us is not None
        ]
        if rows:
            cursor.execute(f"INSERT INTO {SUMMARY_TABLE} VALUES {', '.join(rows)}")  # noqa: S608 - values quoted
            cursor.fetchall()
        cursor.execute(QUERY, [run_id])
        result: list[list[object]] = cursor.fetchall()
        return result
    finally:
        connection.close()


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*row)
    return table


def show(out: Outputs) -> None:
    samples = sum(t.samples for t in out.clean.values())
    packages = sum(t.packages for t in out.clean.values())
    console.print(f"clean readings: {packages} packages, {samples} samples from {len(out.clean)} sensors")
    console.print(
        _table(
            "samples left out of the clean stream",
            ["quality", "samples"],
            [[k, str(v)] for k, v in sorted(out.dropped.items())],
        )
    )
    console.print(_table("dead letters", ["reason", "messages"], [[k, str(v)] for k, v in sorted(out.dead.items())]))
    console.print(
        _table(
            "clock correction per gateway (latest)",
            ["gateway", "source", "offset ms"],
            [[g, s, f"{o:.1f}"] for g, (s, o) in sorted(out.clocks.items())],
        )
    )
    episodes = Counter((a.asset_id, a.rule, a.severity.value, a.state.value) for a in out.alerts)
    console.print(
        _table(
            "alerts on alerts.v1, by asset and rule",
            ["asset", "rule", "severity", "state", "alerts"],
            [[*key, str(n)] for key, n in sorted(episodes.items())],
        )
    )
    latest = sorted(out.alerts, key=lambda a: a.raised_at)[-12:]
    rows = [[a.raised_at.strftime("%H:%M:%S"), a.state.value, a.asset_id, escape(a.message)] for a in latest]
    console.print(_table("latest alerts", ["raised", "state", "asset", "message"], rows))


def main(seconds: Annotated[float, typer.Option(help="how long the simulated plant streams")] = 20.0) -> None:
    settings = get_settings()
    consumer = _consumer(settings)
    start = {topic: _end_offsets(consumer, topic) for topic in (CLEAN, DEAD, ALERTS)}
    consumer.close()
    with stream_worker(settings, settings.log_dir, "vigil-streams", keep_state=True) as worker:
        console.rule("[bold]1. A simulated plant streams to Kafka")
        console.print(f"stream worker pid {worker.proc.pid if worker.proc else '?'} (log: {worker.log})")
        report = run_simulation(
            GatewaySettings(kafka_bootstrap=settings.kafka_bootstrap),
            # Skewed gateways err by 2.5-10 s, beyond the 2 s clock_skew alert threshold.
            PlantConfig(max_clock_offset_ms=10_000.0),
            FaultRates(bad_rate=0.03, duplicate_rate=0.02),
            rate=RATE,
            duration=seconds,
            # The wearing machine reaches failure halfway through the run, so its alerts show within the demo.
            horizon_s=0.5 * seconds * RATE / len(build_plant(PlantConfig()).sensors),
        )
        console.print(render(report))
        console.rule("[bold]2. What the stream stage made of it (read back from Kafka)")
        if not _wait_caught_up(settings, worker.app_id):
            console.print(f"[red]the stream worker did not catch up in time; see {worker.log}[/]")
            raise typer.Exit(1)
    out = read_outputs(settings, start)
    show(out)

    console.rule("[bold]3. Queried through Trino (catalog vigil, Delta on MinIO)")
    run_id = report.started_at.strftime("%Y%m%dT%H%M%S")
    rows = _summarise_in_trino(settings, run_id, out)
    console.print(escape(QUERY.replace("?", f"'{run_id}'")), style="dim")
    console.print(
        _table(
            "",
            ["machine", "sensors", "packages", "clean samples", "first (UTC)", "last"],
            [[str(c) for c in row] for row in rows],
        )
    )
    if not rows:
        console.print("[red]Trino returned no rows: nothing arrived[/]")
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
