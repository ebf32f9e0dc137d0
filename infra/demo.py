"""`make demo`: stream a simulated plant into the running platform and show what arrived.

Reads everything back from Kafka (nothing is taken on trust from the
simulator), checks each package with the stream stage's validator, and writes a
per-sensor summary of the run to a Delta table that it then queries through
Trino. Until the lakehouse writer lands, this summary table is the demo's own;
it is replaced by the real bronze/silver tables later.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import trino
import typer
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connectors.gateway.faults import FaultRates
from connectors.gateway.plant import PlantConfig
from connectors.gateway.producer import run_simulation
from connectors.gateway.report import render
from connectors.gateway.settings import GatewaySettings
from contracts import EdgePackage, SensorDescription
from infra.settings import InfraSettings, get_settings
from streams.validate import validate

console = Console(width=120)
PACKAGES, METADATA = "edge.packages.v1", "edge.metadata.v1"
SUMMARY_TABLE = "bronze.demo_ingest_summary"
QUERY = (
    "SELECT machine_id, count(DISTINCT sensor_id) AS sensors, "
    "sum(packages) AS packages, sum(samples) AS samples, "
    "format_datetime(min(first_sample), 'HH:mm:ss.SSS') AS first_sample, "
    "format_datetime(max(last_sample), 'HH:mm:ss.SSS') AS last_sample "
    "FROM bronze.demo_ingest_summary WHERE run_id = ? GROUP BY machine_id ORDER BY machine_id"
)


@dataclass
class SensorTally:
    packages: int = 0
    samples: int = 0
    first_us: int | None = None
    last_us: int | None = None


@dataclass
class ReadBack:
    messages: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    by_sensor: dict[uuid.UUID, SensorTally] = field(default_factory=lambda: defaultdict(SensorTally))
    gateways: Counter[str] = field(default_factory=Counter)
    example: EdgePackage | None = None
    sensors: dict[uuid.UUID, SensorDescription] = field(default_factory=dict)


def _consumer(settings: InfraSettings) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"vigil-demo-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "log_level": 4,
        }
    )


def _end_offsets(consumer: Consumer, topic: str) -> dict[int, int]:
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}


def _read(consumer: Consumer, topic: str, start: dict[int, int], end: dict[int, int]) -> list[tuple[bytes, datetime]]:
    """Every message of `topic` between two offset snapshots, with its broker timestamp."""
    wanted = {p: end[p] - start.get(p, 0) for p in end if end[p] > start.get(p, 0)}
    consumer.assign([TopicPartition(topic, p, start.get(p, 0)) for p in wanted])
    out: list[tuple[bytes, datetime]] = []
    remaining = sum(wanted.values())
    idle = 0
    while remaining > 0 and idle < 20:  # bounded: 20 empty polls of 0.5 s
        message = consumer.poll(0.5)
        if message is None or message.error() is not None:
            idle += 1
            continue
        partition, offset = message.partition(), message.offset()
        if partition is not None and offset is not None and offset < end[partition]:
            _, ms = message.timestamp()
            out.append((message.value() or b"", datetime.fromtimestamp(ms / 1000, tz=UTC)))
            remaining -= 1
    consumer.unassign()
    return out


def read_back(settings: InfraSettings, start: dict[str, dict[int, int]]) -> ReadBack:
    consumer = _consumer(settings)
    result = ReadBack()
    try:
        for raw, _ in _read(consumer, METADATA, start[METADATA], _end_offsets(consumer, METADATA)):
            sensor = SensorDescription.from_wire(raw)
            result.sensors[sensor.sensor_id] = sensor
        for raw, received in _read(consumer, PACKAGES, start[PACKAGES], _end_offsets(consumer, PACKAGES)):
            result.messages += 1
            checked = validate(raw, received)
            if not isinstance(checked, EdgePackage):
                result.rejected[checked.reason.value] += 1
                continue
            tally = result.by_sensor[checked.sensor_id]
            tally.packages += 1
            result.gateways[checked.gateway_id] += 1
            if checked.samples is not None:
                tally.samples += len(checked.samples.t)
                first, last = checked.samples.t[0], checked.samples.t[-1]
                tally.first_us = first if tally.first_us is None else min(tally.first_us, first)
                tally.last_us = last if tally.last_us is None else max(tally.last_us, last)
                if result.example is None or len(checked.samples.t) > len(result.example.samples.t):  # type: ignore[union-attr]
                    result.example = checked
    finally:
        consumer.close()
    return result


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _summarise_in_trino(settings: InfraSettings, run_id: str, back: ReadBack) -> list[list[object]]:
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
        rows = []
        for sensor_id, tally in back.by_sensor.items():
            meta = back.sensors.get(sensor_id)
            if meta is None or tally.first_us is None or tally.last_us is None:
                continue
            rows.append(
                f"('{run_id}', '{sensor_id}', {_quote(meta.context.machine_id)}, {_quote(meta.context.site)}, "
                f"'{meta.quantity.value}', {_quote(meta.unit)}, {tally.packages}, {tally.samples}, "
                f"from_unixtime_nanos({tally.first_us * 1000}), from_unixtime_nanos({tally.last_us * 1000}))"
            )
        if rows:
            cursor.execute(f"INSERT INTO {SUMMARY_TABLE} VALUES {', '.join(rows)}")  # noqa: S608 - values quoted
            cursor.fetchall()
        cursor.execute(QUERY, [run_id])
        result: list[list[object]] = cursor.fetchall()
        return result
    finally:
        connection.close()


def main(seconds: Annotated[float, typer.Option(help="how long the simulated plant streams")] = 20.0) -> None:
    settings = get_settings()
    consumer = _consumer(settings)
    start = {topic: _end_offsets(consumer, topic) for topic in (PACKAGES, METADATA)}
    consumer.close()

    console.rule("[bold]1. A simulated plant streams to Kafka")
    report = run_simulation(
        GatewaySettings(kafka_bootstrap=settings.kafka_bootstrap),
        PlantConfig(),
        FaultRates(bad_rate=0.03, duplicate_rate=0.02),
        rate=40.0,
        duration=seconds,
    )
    console.print(render(report))

    console.rule("[bold]2. Read back from Kafka and checked by the stream validator")
    back = read_back(settings, start)
    table = Table("gateway", "valid packages")
    for gateway, count in sorted(back.gateways.items()):
        table.add_row(gateway, str(count))
    console.print(table)
    rejected = Table("rejected: reason", "messages")
    for reason, count in sorted(back.rejected.items()):
        rejected.add_row(reason, str(count))
    console.print(rejected)
    valid = sum(back.gateways.values())
    console.print(
        f"{back.messages} messages read back from {PACKAGES} ({valid} valid incl. duplicates, "
        f"{sum(back.rejected.values())} rejected); {len(back.sensors)} sensor descriptions on {METADATA}"
    )
    if back.example is not None and back.example.samples is not None:
        ex = back.example
        meta = back.sensors.get(ex.sensor_id)
        samples = ex.samples
        assert samples is not None
        what = f"{meta.label.get('en')} on {meta.context.machine_id} [{meta.unit}]" if meta else str(ex.sensor_id)
        console.print(
            escape(
                f"example package {ex.package_id} from {ex.gateway_id}: {what}, {len(samples.t)} samples, "
                f"first values {[round(v, 3) if v is not None else None for v in samples.v[:5]]}"
            )
        )

    console.rule("[bold]3. Queried through Trino (catalog vigil, Delta on MinIO)")
    run_id = report.started_at.strftime("%Y%m%dT%H%M%S")
    rows = _summarise_in_trino(settings, run_id, back)
    result = Table("machine", "sensors", "packages", "samples", "first sample (UTC)", "last sample")
    for row in rows:
        result.add_row(*[str(c) for c in row])
    console.print(escape(QUERY.replace("?", f"'{run_id}'")), style="dim")
    console.print(result)
    if not rows:
        console.print("[red]Trino returned no rows: nothing arrived[/]")
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
