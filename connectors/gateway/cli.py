"""`vigil-gateway`: simulate a plant streaming to Kafka, replay a CSV, or describe the plant."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from connectors.gateway.faults import BAD_KINDS, FaultRates
from connectors.gateway.plant import PlantConfig, build_plant, sensor_descriptions
from connectors.gateway.producer import GatewayError, run_replay, run_simulation
from connectors.gateway.replay import MAX_SAMPLES_PER_PACKAGE, load_descriptions, read_csv
from connectors.gateway.report import SendReport, render
from connectors.gateway.settings import GatewaySettings
from contracts import ReasonCode
from infra import cli_main

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
console = Console()
errors = Console(stderr=True)

# Plant options shared by `run` and `describe`, so both show the same plant for the same flags.
Gateways = Annotated[int, typer.Option(min=1, max=99, help="Number of gateways.")]
Machines = Annotated[int, typer.Option(min=1, max=99, help="Machines per gateway (4 sensors each).")]
SamplesPer = Annotated[
    int,
    typer.Option(min=1, max=MAX_SAMPLES_PER_PACKAGE, help="Samples per vibration package; sets the window length."),
]
VibrationHz = Annotated[float, typer.Option(min=1, help="Vibration sampling rate (others sample at 10 Hz).")]
Seed = Annotated[int, typer.Option(min=0, help="Seed: same seed, same plant, same signals.")]
Site = Annotated[str, typer.Option(help="Site name, part of gateway ids.")]
Degrading = Annotated[str, typer.Option(help="How many machines wear out (a number) or which (comma-separated ids).")]
Skewed = Annotated[int, typer.Option(min=0, help="Gateways with a large clock error (every other one reports NTP).")]
OffsetMs = Annotated[float, typer.Option(min=0, help="Largest clock offset of a skewed gateway, ms.")]
DriftPpm = Annotated[float, typer.Option(min=0, help="Largest clock drift of a skewed gateway, ppm.")]
Fahrenheit = Annotated[bool, typer.Option(help="Let one temperature sensor report in degF.")]
Bootstrap = Annotated[
    str | None,
    typer.Option(
        help="Kafka bootstrap servers.", show_default="$VIGIL_KAFKA_BOOTSTRAP or $VIGIL_HOST:$VIGIL_KAFKA_PORT"
    ),
]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON to this file.")]
Rate = Annotated[float, typer.Option(min=0, help="Target package messages per second (0 = as fast as possible).")]


def _plant(
    gateways: int,
    machines: int,
    samples: int,
    vibration_hz: float,
    seed: int,
    site: str,
    degrading: str,
    skewed: int,
    offset_ms: float,
    drift_ppm: float,
    fahrenheit: bool,
    start: str | None = None,
) -> PlantConfig:
    wearing: int | tuple[str, ...] = (
        int(degrading) if degrading.strip().isdigit() else tuple(d.strip() for d in degrading.split(",") if d.strip())
    )
    fields = {
        "seed": seed,
        "site": site,
        "gateways": gateways,
        "machines_per_gateway": machines,
        "samples_per_package": samples,
        "vibration_rate_hz": vibration_hz,
        "degrading": wearing,
        "skewed_gateways": skewed,
        "max_clock_offset_ms": offset_ms,
        "max_drift_ppm": drift_ppm,
        "fahrenheit": fahrenheit,
    }
    try:
        if start is not None:
            fields["start"] = datetime.fromisoformat(start)
        config = PlantConfig.model_validate(fields)
        build_plant(config)  # surfaces unknown machine ids now, as a usage error
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    return config


def _finish(report: SendReport, json_out: Path | None) -> None:
    console.print(render(report))
    if json_out is not None:
        json_out.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        console.print(f"report written to {json_out}")
    if report.failed:
        raise typer.Exit(1)


@app.command()
def run(
    gateways: Gateways = 2,
    machines_per_gateway: Machines = 3,
    samples_per_package: SamplesPer = 1000,
    vibration_hz: VibrationHz = 1000.0,
    rate: Rate = 200.0,
    duration: Annotated[float | None, typer.Option(min=0, help="Stop after this many seconds.")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many package messages.")] = None,
    seed: Seed = 42,
    site: Site = "plant-a",
    degrading: Degrading = "1",
    outlier_rate: Annotated[float, typer.Option(min=0, max=1, help="Per sample: spike.")] = 0.001,
    null_rate: Annotated[float, typer.Option(min=0, max=1, help="Per sample: null reading.")] = 0.0005,
    gap_rate: Annotated[float, typer.Option(min=0, max=1, help="Per package: dropped run of samples.")] = 0.02,
    stuck_rate: Annotated[float, typer.Option(min=0, max=1, help="Per package: stuck run.")] = 0.01,
    bad_rate: Annotated[float, typer.Option(min=0, max=1, help="Per package: extra bad package.")] = 0.01,
    duplicate_rate: Annotated[float, typer.Option(min=0, max=1, help="Per package: re-send of an earlier one.")] = 0.01,
    features_rate: Annotated[float, typer.Option(min=0, max=1, help="Per vibration package: edge features.")] = 0.0,
    bad_kinds: Annotated[str, typer.Option(help="Comma-separated reason codes to inject.")] = ",".join(BAD_KINDS),
    skewed_gateways: Skewed = 1,
    max_clock_offset_ms: OffsetMs = 1500.0,
    max_drift_ppm: DriftPpm = 50.0,
    fahrenheit: Fahrenheit = True,
    horizon: Annotated[
        float | None, typer.Option(min=1, help="Seconds until a wearing machine fails.", show_default="the run")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            help="True time of the first window, ISO-8601 with offset.", show_default="so that the data ends now"
        ),
    ] = None,
    bootstrap: Bootstrap = None,
    json_out: JsonOut = None,
) -> None:
    """Register sensor metadata, then stream packages (valid, bad and duplicates) to Kafka."""
    config = _plant(
        gateways,
        machines_per_gateway,
        samples_per_package,
        vibration_hz,
        seed,
        site,
        degrading,
        skewed_gateways,
        max_clock_offset_ms,
        max_drift_ppm,
        fahrenheit,
        start,
    )
    try:
        kinds = tuple(ReasonCode(k.strip()) for k in bad_kinds.split(",") if k.strip())
        rates = FaultRates(
            outlier_rate=outlier_rate,
            null_rate=null_rate,
            gap_rate=gap_rate,
            stuck_rate=stuck_rate,
            bad_rate=bad_rate,
            duplicate_rate=duplicate_rate,
            features_rate=features_rate,
            bad_kinds=kinds,
        )
    except ValueError as exc:  # ValidationError is a ValueError
        raise typer.BadParameter(f"{exc}; bad kinds are {', '.join(BAD_KINDS)}") from exc
    if duration is None and count is None:
        duration = 10.0
    try:
        report = run_simulation(
            GatewaySettings(),
            config,
            rates,
            bootstrap=bootstrap,
            rate=rate or None,
            duration=duration,
            count=count,
            horizon_s=horizon,
            anchor=start is None,
        )
    except GatewayError as exc:
        errors.print(f"[red]vigil-gateway: {exc}[/red]")
        raise typer.Exit(2) from exc
    _finish(report, json_out)


@app.command()
def replay(
    csv_path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV: timestamp,sensor_id,value.")],
    samples_per_package: Annotated[
        int,
        typer.Option(min=1, max=MAX_SAMPLES_PER_PACKAGE, help="Readings per package (each must fit a Kafka message)."),
    ] = 100,
    gateway_id: Annotated[str, typer.Option(help="Gateway id the packages carry.")] = "gw-replay",
    metadata: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Sensor descriptions (JSON lines) to send first.")
    ] = None,
    clock_offset_ms: Annotated[
        float | None, typer.Option(help="clock_offset_ms to report (CSV times are trusted by default).")
    ] = 0.0,
    rate: Rate = 0.0,
    bootstrap: Bootstrap = None,
    json_out: JsonOut = None,
) -> None:
    """Turn a CSV of timestamped readings into packages and send them; bad rows are reported and skipped."""
    try:
        readings = read_csv(csv_path)
        descriptions = load_descriptions(metadata) if metadata is not None else []
        report = run_replay(
            GatewaySettings(),
            readings,
            gateway_id=gateway_id,
            samples_per_package=samples_per_package,
            bootstrap=bootstrap,
            rate=rate or None,
            clock_offset_ms=clock_offset_ms,
            descriptions=descriptions,
        )
    except (GatewayError, ValueError, OSError) as exc:  # ValueError: also a file that is not UTF-8 text
        errors.print(f"[red]vigil-gateway: {exc}[/red]")
        raise typer.Exit(2) from exc
    _finish(report, json_out)


@app.command()
def describe(
    gateways: Gateways = 2,
    machines_per_gateway: Machines = 3,
    samples_per_package: SamplesPer = 1000,
    vibration_hz: VibrationHz = 1000.0,
    seed: Seed = 42,
    site: Site = "plant-a",
    degrading: Degrading = "1",
    skewed_gateways: Skewed = 1,
    max_clock_offset_ms: OffsetMs = 1500.0,
    max_drift_ppm: DriftPpm = 50.0,
    fahrenheit: Fahrenheit = True,
    metadata_out: Annotated[Path | None, typer.Option(help="Write the sensor descriptions as JSON lines.")] = None,
) -> None:
    """Print the plant (gateways, clocks, machines, sensors) without touching Kafka."""
    config = _plant(
        gateways,
        machines_per_gateway,
        samples_per_package,
        vibration_hz,
        seed,
        site,
        degrading,
        skewed_gateways,
        max_clock_offset_ms,
        max_drift_ppm,
        fahrenheit,
    )
    plant = build_plant(config)
    gateway_table = Table(title=f"plant {config.site}: seed {config.seed}, window {config.window_us / 1e6:g} s")
    for column in ("gateway", "offset ms", "drift ppm", "reports NTP", "machines"):
        gateway_table.add_column(column)
    for g in plant.gateways:
        gateway_table.add_row(
            g.gateway_id,
            f"{g.clock.offset_ms:+.3f}",
            f"{g.clock.drift_ppm:+.3f}",
            "yes" if g.clock.reports_ntp else "no",
            ", ".join(f"{m.machine_id}{' (wears out)' if m.degrading else ''}" for m in g.machines),
        )
    sensor_table = Table(title="sensors")
    for column in ("sensor id", "machine", "kind", "unit", "Hz", "per package"):
        sensor_table.add_column(column)
    for sensor in plant.sensors:
        lo, hi = sensor.sample_range(config.window_us, 0)
        sensor_table.add_row(
            str(sensor.sensor_id),
            sensor.machine.machine_id,
            sensor.kind.value,
            sensor.unit,
            f"{sensor.rate_hz:g}",
            str(hi - lo),
        )
    console.print(gateway_table, sensor_table)
    if metadata_out is not None:
        lines = [d.to_wire().decode() for d in sensor_descriptions(plant, config.start)]
        metadata_out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        console.print(f"{len(lines)} sensor descriptions written to {metadata_out}")


def main() -> None:
    """The console script: a bad setting ends it with one line per problem, not a traceback."""
    cli_main.run(app)
