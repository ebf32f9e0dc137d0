"""The simulated plant through the stream stage into the lake: Trino returns exactly what Kafka says.

Expected numbers come from outside the lake: the generator's report (what was
sent) and the stream stage's output topics (what it accepted, graded, rejected
and alerted). The lake must hold exactly that: no row lost, none twice, also
after the writer is killed with SIGKILL mid-stream.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from connectors.gateway.faults import FaultRates
from connectors.gateway.plant import PlantConfig
from connectors.gateway.producer import run_simulation
from connectors.gateway.report import SendReport
from connectors.gateway.settings import GatewaySettings
from contracts import Alert, CleanReadingBatch, DeadLetter, FlaggedSamples
from infra import procs
from infra.settings import InfraSettings
from infra.streams_worker import end_offsets, stream_worker
from jobs.lake.catalog import offsets_predicate as in_range
from tests.e2e.lake_support import Offsets, decode_all, ends, query, read, wait_for, wait_until

pytestmark = pytest.mark.e2e
PACKAGES, CLEAN, FLAGGED, DEAD, ALERTS = (
    "edge.packages.v1",
    "readings.clean.v1",
    "readings.flagged.v1",
    "edge.deadletter.v1",
    "alerts.v1",
)
TOPICS = (PACKAGES, CLEAN, FLAGGED, DEAD, ALERTS)


def _plant(site: str, seed: int) -> PlantConfig:
    # Small packages keep the run short; the wearing machine and bad packages still exercise every table.
    return PlantConfig(seed=seed, site=site, gateways=1, machines_per_gateway=2, samples_per_package=200)


def _simulate(settings: InfraSettings, site: str, seed: int, **how: float) -> SendReport:
    return run_simulation(
        GatewaySettings(kafka_bootstrap=settings.kafka_bootstrap),
        _plant(site, seed),
        FaultRates(bad_rate=0.05, duplicate_rate=0.04),
        rate=how.get("rate", 100.0),
        count=int(how["count"]) if "count" in how else None,
        duration=how.get("duration"),
    )


@dataclass
class Expected:
    """What the lake must hold for one run, from the generator and the stream stage's topics."""

    site: str
    since: dict[str, Offsets]
    until: dict[str, Offsets]
    packages: int
    samples: int
    missing: int
    value_sum: float
    dead_by_reason: Counter[str]
    alerts: int
    flagged_by_code: Counter[str]


def _expected(settings: InfraSettings, site: str, since: dict[str, Offsets], report: SendReport) -> Expected:
    """Wait until the stage has answered every package of `report`, then read its outputs."""

    def clean_of_site() -> list[CleanReadingBatch]:
        got = decode_all(CleanReadingBatch, read(settings, CLEAN, since[CLEAN], ends(settings, CLEAN)))
        return [c for c in got if c.site == site]

    def flagged_of_site() -> dict[uuid.UUID, FlaggedSamples]:
        got = decode_all(FlaggedSamples, read(settings, FLAGGED, since[FLAGGED], ends(settings, FLAGGED)))
        return {f.package_id: f for f in got if f.site == site}  # a replayed record counts once, as in the lake

    wait_until(lambda: len({c.package_id for c in clean_of_site()}) >= report.valid, 300, "the stream stage")
    # A package's flagged record is a message of its own: wait for one per package that dropped samples.
    with_drops = {c.package_id for c in clean_of_site() if c.dropped}
    wait_until(lambda: flagged_of_site().keys() >= with_drops, 120, "the flagged samples of the stream stage")
    until = {t: ends(settings, t) for t in TOPICS}
    clean = {c.package_id: c for c in clean_of_site()}  # a replayed record counts once, as in the lake
    flagged = flagged_of_site()
    dead = decode_all(DeadLetter, read(settings, DEAD, since[DEAD], until[DEAD]))
    alerts = decode_all(Alert, read(settings, ALERTS, since[ALERTS], until[ALERTS]))
    samples = sum(len(c.v) for c in clean.values())
    # Every sample the generator sent is either clean or counted as dropped with its quality code.
    assert samples + sum(sum(c.dropped.values()) for c in clean.values()) == report.samples
    assert len(clean) == report.valid
    # ... and each dropped sample is in the package's flagged record, with the code it was counted under.
    flagged_by_code = Counter(q.value for f in flagged.values() for q in f.quality)
    assert flagged_by_code == sum((Counter(c.dropped) for c in clean.values()), Counter())
    assert flagged.keys() == {p for p, c in clean.items() if c.dropped}
    return Expected(
        site=site,
        since=since,
        until=until,
        packages=len(clean),
        samples=samples,
        missing=sum(c.missing_samples for c in clean.values()),
        value_sum=sum(sum(c.v) for c in clean.values()),
        dead_by_reason=Counter(d.reason.value for d in dead),
        alerts=len(alerts),
        flagged_by_code=flagged_by_code,
    )


def _assert_lake_holds(settings: InfraSettings, want: Expected) -> None:
    site = f"'{want.site}'"
    readings = wait_for(
        settings,
        "SELECT count(*), count(DISTINCT concat(package_id, ':', CAST(sample_index AS varchar))), "
        f"count(DISTINCT package_id) FROM silver.readings WHERE site = {site}",
        [want.samples, want.samples, want.packages],
    )
    assert readings == [want.samples, want.samples, want.packages], "silver.readings: (rows, unique samples, packages)"
    [[value_sum]] = query(settings, f"SELECT sum(value) FROM silver.readings WHERE site = {site}")
    assert value_sum == pytest.approx(want.value_sum, rel=1e-9, abs=1e-6)
    packages = wait_for(
        settings,
        f"SELECT count(*), sum(missing_samples) FROM silver.packages WHERE site = {site}",
        [want.packages, want.missing],
    )
    assert packages == [want.packages, want.missing], "silver.packages: (rows, missing samples)"
    sent = sum(want.until[PACKAGES][p] - want.since[PACKAGES].get(p, 0) for p in want.until[PACKAGES])
    bronze = wait_for(
        settings,
        f"SELECT count(*) FROM bronze.packages WHERE {in_range(want.since[PACKAGES], want.until[PACKAGES])}",
        [sent],
    )
    assert bronze == [sent], "bronze.packages holds every message of the range"
    # bronze.deadletter also quarantines undecodable messages of the other Avro topics (stage 'lake', with their
    # own topic's positions): only the rows read from edge.deadletter.v1 belong to this range.
    from_dead = f"(stage <> 'lake' OR source_topic = '{DEAD}')"
    where_dead = f"{in_range(want.since[DEAD], want.until[DEAD])} AND {from_dead}"
    dead_total = sum(want.dead_by_reason.values())
    assert wait_for(settings, f"SELECT count(*) FROM bronze.deadletter WHERE {where_dead}", [dead_total]) == [
        dead_total
    ]
    by_reason = query(settings, f"SELECT reason, count(*) FROM bronze.deadletter WHERE {where_dead} GROUP BY reason")
    assert Counter({reason: n for reason, n in by_reason}) == want.dead_by_reason
    flagged = sum(want.flagged_by_code.values())
    in_flagged = f"FROM bronze.flagged_samples WHERE site = {site}"
    got_flagged = wait_for(
        settings,
        f"SELECT count(*), count(DISTINCT concat(package_id, ':', CAST(sample_index AS varchar))) {in_flagged}",
        [flagged, flagged],
    )
    assert got_flagged == [flagged, flagged], "bronze.flagged_samples: (rows, unique samples)"
    by_code = query(settings, f"SELECT quality, count(*) {in_flagged} GROUP BY quality")
    assert Counter({code: n for code, n in by_code}) == want.flagged_by_code
    where_alerts = in_range(want.since[ALERTS], want.until[ALERTS])
    assert wait_for(settings, f"SELECT count(*) FROM silver.alerts WHERE {where_alerts}", [want.alerts]) == [
        want.alerts
    ]


def test_lake_holds_exactly_what_was_produced(lake_writer: InfraSettings, tmp_path: Path) -> None:
    settings = lake_writer
    site = f"e2e-{uuid.uuid4().hex[:6]}"
    since = {t: ends(settings, t) for t in TOPICS}
    with stream_worker(settings, tmp_path, start_at=end_offsets(settings)):
        report = _simulate(settings, site, seed=7, count=240)
        assert report.bad > 0
        assert report.duplicates > 0
        assert report.failed == 0
        want = _expected(settings, site, since, report)
    assert sum(want.dead_by_reason.values()) >= report.bad + report.duplicates
    assert sum(want.flagged_by_code.values()) > 0, "no sample was flagged: bronze.flagged_samples went untested"
    _assert_lake_holds(settings, want)
    sensors = query(settings, f"SELECT count(*) FROM silver.sensors WHERE site = '{site}'")
    assert sensors == [[report.sensors]]


def test_lake_writer_killed_mid_stream_loses_and_duplicates_nothing(lake_writer: InfraSettings, tmp_path: Path) -> None:
    settings = lake_writer
    site = f"e2e-kill-{uuid.uuid4().hex[:6]}"
    since = {t: ends(settings, t) for t in TOPICS}
    reports: list[SendReport] = []
    with stream_worker(settings, tmp_path, start_at=end_offsets(settings)):
        feeder = threading.Thread(
            target=lambda: reports.append(_simulate(settings, site, seed=11, duration=40, rate=15))
        )
        feeder.start()
        wait_until(
            lambda: query(settings, f"SELECT count(*) FROM silver.readings WHERE site = '{site}'")[0][0] > 0,
            240,
            "the first rows of the run in silver.readings",
        )
        pid = procs.running_pid(settings, "lake")
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)  # the Python driver and its Spark JVM: no stop, no cleanup
        restarted = subprocess.run([sys.executable, "-m", "jobs.lake", "start"], check=False, timeout=600)
        assert restarted.returncode == 0, "the lake writer did not restart; read .data/logs/lake.log"
        feeder.join(120)
        assert reports, "the simulation did not finish"
        want = _expected(settings, site, since, reports[0])
    _assert_lake_holds(settings, want)


def _numpy_stats(
    clean: list[CleanReadingBatch], flagged: dict[uuid.UUID, FlaggedSamples], day: date
) -> dict[str, dict[str, float | None]]:
    """The gold.daily_sensor_stats numbers of `day`, computed independently with numpy from the Kafka records."""
    values: dict[str, list[float]] = defaultdict(list)
    graded: dict[str, Counter[str]] = defaultdict(Counter)
    for c in clean:
        for t_us, v in zip(c.t_us, c.v, strict=True):
            if datetime.fromtimestamp(t_us / 1e6, tz=UTC).date() == day:
                values[str(c.sensor_id)].append(v)
        # A package is dated by its first clean sample; one with every sample flagged by its first flagged one.
        first = c.t_us or (flagged[c.package_id].t_us if c.dropped and c.package_id in flagged else [])
        if first and datetime.fromtimestamp(min(first) / 1e6, tz=UTC).date() == day:
            graded[str(c.sensor_id)].update({"ok": len(c.v), **c.dropped})
    out: dict[str, dict[str, float | None]] = {}
    for sensor in values.keys() | graded.keys():
        total = sum(graded[sensor].values())
        share_ok = graded[sensor]["ok"] / total if total else None
        if not values[sensor]:  # only flagged samples that day: a row without statistics
            out[sensor] = {"samples": 0.0, "mean": None, "std": None, "rms": None, "p95": None, "share_ok": share_ok}
            continue
        x = np.asarray(values[sensor])
        rms = float(np.sqrt(np.mean(x**2)))
        centred = x - x.mean()
        out[sensor] = {
            "samples": float(x.size),
            "mean": float(x.mean()),
            "std": float(x.std(ddof=1)),
            "rms": rms,
            "p50": float(np.percentile(x, 50)),
            "p95": float(np.percentile(x, 95)),
            "p99": float(np.percentile(x, 99)),
            "kurtosis": float(np.mean(centred**4) / np.mean(centred**2) ** 2 - 3),
            "crest_factor": float(np.abs(x).max() / rms),
            "share_ok": share_ok,
        }
    return out


def test_nightly_stats_match_numpy_and_a_rerun_changes_nothing(lake_writer: InfraSettings, tmp_path: Path) -> None:
    settings = lake_writer
    site = f"e2e-gold-{uuid.uuid4().hex[:6]}"
    since = {t: ends(settings, t) for t in TOPICS}
    with stream_worker(settings, tmp_path, start_at=end_offsets(settings)):
        report = _simulate(settings, site, seed=23, count=160)
        want = _expected(settings, site, since, report)
    _assert_lake_holds(settings, want)
    clean = [
        c
        for c in decode_all(CleanReadingBatch, read(settings, CLEAN, since[CLEAN], want.until[CLEAN]))
        if c.site == site
    ]
    clean = list({c.package_id: c for c in clean}.values())
    flagged = {
        f.package_id: f  # a replayed record counts once, as in the lake
        for f in decode_all(FlaggedSamples, read(settings, FLAGGED, since[FLAGGED], want.until[FLAGGED]))
        if f.site == site
    }
    day = datetime.fromtimestamp(min(min(c.t_us) for c in clean if c.t_us) / 1e6, tz=UTC).date()
    expected = _numpy_stats(clean, flagged, day)

    def nightly() -> list[list[object]]:
        done = subprocess.run(
            [sys.executable, "-m", "jobs.nightly", "run", "--date", day.isoformat(), "--no-maintenance"],
            check=False,
            timeout=900,
        )
        assert done.returncode == 0, "the nightly batch failed"
        return query(
            settings,
            f"SELECT * FROM gold.daily_sensor_stats WHERE date = DATE '{day}' ORDER BY sensor_id",
        ) + query(settings, f"SELECT * FROM gold.health_scores WHERE date = DATE '{day}' ORDER BY site, asset_id")

    first = nightly()
    columns = [c[0] for c in query(settings, "DESCRIBE gold.daily_sensor_stats")]
    got = {
        row[columns.index("sensor_id")]: dict(zip(columns, row, strict=True))
        for row in query(
            settings, f"SELECT * FROM gold.daily_sensor_stats WHERE site = '{site}' AND date = DATE '{day}'"
        )
    }
    assert got.keys() == expected.keys()
    for sensor, numbers in expected.items():
        for name, value in numbers.items():
            assert got[sensor][name] == pytest.approx(value, rel=1e-9, abs=1e-9), (sensor, name)
    machines = query(settings, f"SELECT asset_id, score, rank FROM gold.health_scores WHERE site = '{site}'")
    assert {m[0] for m in machines} == {c.asset_id for c in clean}
    assert nightly() == first  # the same day run again: identical gold rows
