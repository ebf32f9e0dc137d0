"""`make demo`: stream a simulated plant through the running platform and show what came out.

A stream worker (a new consumer group, starting at the inputs' current ends)
runs for the duration; the simulated plant streams for `--seconds`; then
everything is read back from Kafka (nothing is taken on trust from the
simulator): clean readings, dead letters by reason, and alerts. Once the lake
writer (`make lake`, started by `make demo`) has landed the run, recent
readings, open alerts and the machines' health ranking are queried through
Trino.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

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
from infra.streams_worker import end_offsets, stream_worker
from infra.topics import high_watermarks
from jobs.lake.catalog import connect, offsets_predicate
from jobs.lake.settings import LakeSettings
from jobs.lake.status import read_status, status_path

console = Console(width=120)
PACKAGES, CLEAN, DEAD, ALERTS = "edge.packages.v1", "readings.clean.v1", "edge.deadletter.v1", "alerts.v1"
FLAGGED = "readings.flagged.v1"
IF_ANY_DROPPED = "if the run dropped samples"  # a query that must return rows only then
RATE = 40.0  # packages per second from the simulated plant
# What the demo shows from the lake: this run only ({since} is its start), as each demo starts a new worker
# whose alert episodes from earlier runs were never closed. Each with whether it must return rows: the open
# alerts may all have closed; the flagged samples must be there when the run's clean records dropped any (the
# demo waits for the lake to land both).
LAKE_QUERIES = (
    (
        "recent readings: the latest clean value per sensor of the plant",
        "SELECT asset_id, location_on_machine AS location, quantity, unit, value, t AS sampled_utc "
        "FROM (SELECT *, row_number() OVER (PARTITION BY sensor_id ORDER BY t_us DESC) AS n "
        "FROM silver.readings WHERE site = 'plant-a' AND received_at >= {since}) "
        "WHERE n = 1 ORDER BY asset_id, quantity",
        True,
    ),
    (
        "open alerts: episodes whose latest state is open",
        "SELECT asset_id, rule, severity, message, raised_at AS opened_utc "
        "FROM (SELECT *, row_number() OVER (PARTITION BY episode_id ORDER BY raised_at DESC) AS n "
        "FROM silver.alerts WHERE raised_at >= {since} AND (site = 'plant-a' OR gateway_id LIKE 'gw-plant-a-%')) "
        "WHERE n = 1 AND state = 'open' ORDER BY asset_id, rule",
        False,
    ),
    (
        "outliers, flagged not deleted: the samples kept out of the clean stream, by machine and code (top 10)",
        "SELECT asset_id, quantity, quality, count(*) AS samples, min(value) AS lowest, max(value) AS highest "
        "FROM bronze.flagged_samples WHERE site = 'plant-a' AND received_at >= {since} "
        "GROUP BY asset_id, quantity, quality ORDER BY samples DESC, asset_id LIMIT 10",
        IF_ANY_DROPPED,
    ),
    (
        "health ranking of the machines today (gold.health_scores; 100 = like its peers and history)",
        "SELECT rank, asset_id, machine_kind, round(score, 1) AS score, healthy, worst_quantity, worst_feature, basis, "
        "CASE WHEN alert_raised THEN 'opened' WHEN alert_closed THEN 'closed' "
        "WHEN episode_id IS NOT NULL THEN 'open' ELSE '' END AS health_alert "
        "FROM gold.health_scores WHERE site = 'plant-a' AND date = DATE '{today}' ORDER BY rank",
        True,
    ),
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
        end = high_watermarks(consumer, PACKAGES)
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
        for raw in _read(consumer, CLEAN, start[CLEAN], high_watermarks(consumer, CLEAN)):
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
        for raw in _read(consumer, DEAD, start[DEAD], high_watermarks(consumer, DEAD)):
            out.dead[avro_codec.decode(DeadLetter, raw).reason.value] += 1
        out.alerts = [
            avro_codec.decode(Alert, raw)
            for raw in _read(consumer, ALERTS, start[ALERTS], high_watermarks(consumer, ALERTS))
        ]
    finally:
        consumer.close()
    return out


LAKE_QUIET_S = 300.0  # give up once the writer has finished no batch for this long
LAKE_MAX_S = 1800.0  # and in any case after this (a bounded wait)


def _wait_for_lake(settings: InfraSettings, landed: dict[str, int]) -> bool:
    """True once each count query of `landed` returns at least its number (the run's rows in the lake).

    The writer reads the topics in order: with an older backlog (say, what `make test` left) it lands this run
    only after that. So the wait goes on while its batches keep completing, and says so.
    """
    began = last_progress = time.monotonic()
    last_batch: int | None = None
    with console.status(
        "waiting for the lake writer to land the run (silver.packages, bronze.flagged_samples) ..."
    ) as shown:
        while time.monotonic() - last_progress < LAKE_QUIET_S and time.monotonic() - began < LAKE_MAX_S:
            if all(_trino(settings, sql)[0][0] >= count for sql, count in landed.items()):
                return True
            status = read_status(status_path(settings)) or {}
            batch = status.get("batch_id")
            if batch is not None and batch != last_batch:
                if last_batch is not None:
                    last_progress = time.monotonic()
                    behind = _lake_backlog(settings)
                    shown.update(
                        f"the lake writer lands older messages first ({behind if behind is not None else '?'} "
                        f"left at batch {batch}, {status.get('rows_per_second', '?')} rows/s); "
                        f"{time.monotonic() - began:.0f} s so far ..."
                    )
                last_batch = batch
            time.sleep(2.0)
    return False


def _lake_backlog(settings: InfraSettings) -> int | None:
    """Messages the lake writer has still to read: the topics' ends minus the offsets of its latest planned batch
    (the last line of Spark's newest offsets file in the checkpoint); None if that cannot be read."""
    offsets_dir = LakeSettings().checkpoint(settings) / "query" / "offsets"
    try:
        newest = max((p for p in offsets_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        planned: dict[str, dict[str, int]] = json.loads(newest.read_text().splitlines()[-1])
        ends = end_offsets(settings, tuple(planned))
    except (OSError, ValueError, KeyError, IndexError):
        return None
    return sum(max(ends[t].get(int(p), 0) - o, 0) for t, parts in planned.items() for p, o in parts.items())


def _trino(settings: InfraSettings, sql: str) -> list[list[Any]]:
    return _trino_with_columns(settings, sql)[1]


def _trino_with_columns(settings: InfraSettings, sql: str) -> tuple[list[str], list[list[Any]]]:
    with connect(settings, user="vigil-demo") as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        rows: list[list[Any]] = cursor.fetchall()
        return [d[0] for d in cursor.description], rows


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
    start = {topic: high_watermarks(consumer, topic) for topic in (CLEAN, FLAGGED, DEAD, ALERTS)}
    consumer.close()
    # A new consumer group starting at the inputs' ends: the demo shows this run, not older backlog.
    with stream_worker(settings, settings.log_dir, start_at=end_offsets(settings)) as worker:
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
        until = {topic: _end_offsets_of(settings, topic) for topic in (CLEAN, FLAGGED)}
    out = read_outputs(settings, start)
    show(out)

    console.rule("[bold]3. The lake, queried through Trino (catalog vigil, Delta on MinIO)")
    packages, flagged = sum(t.packages for t in out.clean.values()), sum(out.dropped.values())
    clean_rows, flagged_rows = (
        offsets_predicate(start[CLEAN], until[CLEAN]),
        offsets_predicate(start[FLAGGED], until[FLAGGED]),
    )
    landed = {  # the WHERE clauses hold only integers (offsets)
        f"SELECT count(DISTINCT package_id) FROM silver.packages WHERE {clean_rows}": packages,  # noqa: S608
        f"SELECT count(*) FROM bronze.flagged_samples WHERE {flagged_rows}": flagged,  # noqa: S608
    }
    if (behind := _lake_backlog(settings)) is not None and behind > 10_000:
        console.print(
            f"the lake writer is {behind} messages behind (older runs, e.g. `make test`'s); "
            "it lands this run after them, so this can take minutes"
        )
    if not _wait_for_lake(settings, landed):
        console.print(
            "[red]the lake writer did not land the run (no batch finished for 5 min, or 30 min passed); "
            "see `make lake-status`[/]"
        )
        raise typer.Exit(1)
    console.print("running today's nightly batch (no compaction) for the health ranking ...")
    today = datetime.now(UTC).date().isoformat()
    nightly = subprocess.run(
        [sys.executable, "-m", "jobs.nightly", "run", "--date", today, "--no-maintenance"],
        capture_output=True,
        text=True,
        check=False,
    )
    if nightly.returncode != 0:
        console.print(f"[red]the nightly batch failed:[/]\n{escape(nightly.stdout[-3000:] + nightly.stderr[-3000:])}")
        raise typer.Exit(1)
    for title, sql, required in LAKE_QUERIES:
        # `today` is the UTC date the nightly run above wrote; Trino's current_date is the client's local date.
        sql = sql.format(since=f"from_iso8601_timestamp('{report.started_at.isoformat()}')", today=today)
        columns, rows = _trino_with_columns(settings, sql)
        console.print(escape(sql), style="dim")
        console.print(_table(title, columns, [[_cell(v) for v in row] for row in rows]))
        if not rows and (required is True or (required == IF_ANY_DROPPED and flagged > 0)):
            console.print("[red]Trino returned no rows[/]")
            raise typer.Exit(1)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, datetime):
        return value.strftime("%H:%M:%S.%f")[:-3]
    return escape(str(value))


def _end_offsets_of(settings: InfraSettings, topic: str) -> dict[int, int]:
    consumer = _consumer(settings)
    try:
        return high_watermarks(consumer, topic)
    finally:
        consumer.close()


if __name__ == "__main__":
    typer.run(main)
