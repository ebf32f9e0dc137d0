"""Accuracy of the clock-skew estimator (streams/clock.py) on simulated gateway clocks, against a plain low
percentile of the same window's gaps (the textbook estimator) measured on the same clocks in the same run.

Each simulated gateway has a clock offset (uniform ±30 s) that drifts (uniform ±200 ppm), sends packages at a
fixed period, and each package is delayed on its way to the broker by an exponential delay (never negative,
long tail). The observations reach the window in a shuffled order. Error = |estimate - true offset| at the
newest observation. No services: this runs in a few seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from bench.machine import describe
from infra.settings import get_settings
from streams.clock import PERCENTILE, SkewWindow

RESULTS: Final = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Scenario:
    name: str
    packages: int
    period_ms: float
    mean_delay_ms: float


SCENARIOS: Final = (
    Scenario("400 packages at 1/s, delay 2 ms", 400, 1000.0, 2.0),
    Scenario("400 packages at 1/s, delay 10 ms", 400, 1000.0, 10.0),
    Scenario("400 packages at 1/s, delay 50 ms", 400, 1000.0, 50.0),
    Scenario("busy: 10 min at 50/s, delay 10 ms", 30_000, 20.0, 10.0),
)


def _errors(scenario: Scenario, clocks: int, seed: int) -> tuple[list[float], list[float]]:
    """Per simulated clock: (estimator error, plain-percentile error) in ms."""
    rng = np.random.default_rng(seed)
    ours, plain = [], []
    for _ in range(clocks):
        offset_ms, drift_ppm = rng.uniform(-30_000, 30_000), rng.uniform(-200, 200)
        true_send = np.arange(scenario.packages) * scenario.period_ms + 1.7e12
        offset = offset_ms + drift_ppm * 1e-6 * (true_send - true_send[0])  # true time = gateway time + offset
        append = true_send + rng.exponential(scenario.mean_delay_ms, scenario.packages)
        gap = append - (true_send - offset)
        window = SkewWindow()
        for i in rng.permutation(scenario.packages):
            window = window.observe(float(append[i]), float(gap[i]))
        newest = float(window.append_ms.max())
        estimate = window.estimate(newest)
        assert estimate is not None
        truth = float(offset[-1])
        ours.append(abs(estimate - truth))
        plain.append(abs(float(np.percentile(window.gap_ms, PERCENTILE)) - truth))
    return ours, plain


def _summary(errors: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(errors, 50)), 2),
        "p95_ms": round(float(np.percentile(errors, 95)), 2),
        "max_ms": round(max(errors), 2),
    }


def run(clocks: int, seed: int) -> dict[str, Any]:
    machine = describe(get_settings())
    rows = []
    for scenario in SCENARIOS:
        ours, plain = _errors(scenario, clocks, seed)
        rows.append({"scenario": scenario.name, "estimator": _summary(ours), "plain_percentile": _summary(plain)})
    return {"machine": machine, "clocks_per_scenario": clocks, "seed": seed, "rows": rows}


def main(
    clocks: Annotated[int, typer.Option(min=5, max=1000, help="simulated gateway clocks per scenario")] = 40,
    seed: Annotated[int, typer.Option(help="random seed")] = 2026,
) -> None:
    """Measure the skew estimator's error; print a table and write bench/results/clock-*.json."""
    result = run(clocks, seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"clock-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    table = Table(title=f"clock-skew estimator, |error| over {clocks} clocks per row")
    for column in ("scenario", "estimator p50/p95/max ms", "plain 5th percentile p50/p95/max ms"):
        table.add_column(column)
    for row in result["rows"]:
        cells = [f"{r['p50_ms']} / {r['p95_ms']} / {r['max_ms']}" for r in (row["estimator"], row["plain_percentile"])]
        table.add_row(row["scenario"], *cells)
    console = Console()
    console.print(table)
    console.print(f"written: {path}")


if __name__ == "__main__":
    typer.run(main)
