"""Health scoring on the simulated plant's own signals: a wearing machine ranks worst, healthy ones pass."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from connectors.gateway.signals import MachineParams, SensorKind, degradation, synthesize
from jobs.nightly.health import FEATURES, SensorDay, healthy_history, relative_trend, robust_z, score_machines

pytestmark = pytest.mark.unit
DAY = date(2026, 11, 23)
KINDS = (SensorKind.VIBRATION, SensorKind.TEMPERATURE, SensorKind.MOTOR_CURRENT, SensorKind.PRESSURE)


def _features(values: np.ndarray) -> dict[str, float | None]:
    rms = float(np.sqrt(np.mean(values**2)))
    centred = values - values.mean()
    kurtosis = float(np.mean(centred**4) / np.mean(centred**2) ** 2 - 3)
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)),
        "rms": rms,
        "p95": float(np.percentile(values, 95)),
        "kurtosis": kurtosis,
        "crest_factor": float(np.abs(values).max() / rms),
    }


def _plant_day(seed: int, wearing: str | None, day: date, progress: tuple[float, float]) -> list[SensorDay]:
    """One day of 6 machines' sensors; `wearing` moves from `progress[0]` to `progress[1]` of its way to failure."""
    rng = np.random.default_rng(seed)
    machines = [f"m-{i}" for i in range(6)]
    params = {m: MachineParams.draw(np.random.default_rng(i)) for i, m in enumerate(machines)}  # fixed per machine
    ts = np.arange(0.0, 3600.0, 0.5)
    days = []
    for machine in machines:
        p = np.linspace(*progress, ts.size) if machine == wearing else np.zeros(ts.size)
        for kind in KINDS:
            values = synthesize(kind, params[machine], ts, degradation(p), rng)
            days.append(
                SensorDay(f"{machine}-{kind.value}", machine, "site", kind.value, "press", day, _features(values))
            )
    return days


def test_wearing_machine_scores_worst_on_peers_alone() -> None:
    # Peers alone (a plant's first day): the machine fails within the day, as in `make demo`.
    today = _plant_day(1, "m-3", DAY, (0.5, 1.0))
    machines = score_machines(today, [], min_history=3, window_days=7)
    assert machines[0].asset_id == "m-3"
    assert machines[0].score < 50
    assert all(m.score >= 50 for m in machines[1:]), [(m.asset_id, m.score) for m in machines]
    assert {m.basis for m in machines} == {"peers"}


def test_wearing_machine_scores_worst_against_its_own_history() -> None:
    history = [d for i in range(7) for d in _plant_day(10 + i, "m-2", DAY - timedelta(days=7 - i), (0.0, 0.05 * i))]
    today = _plant_day(99, "m-2", DAY, (0.35, 0.6))
    machines = score_machines(today, history, min_history=3, window_days=7)
    assert machines[0].asset_id == "m-2"
    assert machines[0].score < 50
    assert all(m.score >= 50 for m in machines[1:]), [(m.asset_id, m.score) for m in machines]
    assert "history" in machines[0].basis


def test_a_repaired_machine_is_not_judged_against_its_sick_days() -> None:
    # Four healthy days, three of wear toward failure, then the machine is repaired; the nightly batch scores each
    # day in turn and records which machines were unhealthy.
    wear = [None, None, None, None, (0.4, 0.7), (0.6, 0.9), (0.7, 1.0)]
    history: list[SensorDay] = []
    unhealthy: set[tuple[str, str, date]] = set()
    for i, progress in enumerate(wear):
        day = DAY - timedelta(days=len(wear) - i)
        today = _plant_day(10 + i, "m-2" if progress else None, day, progress or (0.0, 0.0))
        scored = score_machines(today, healthy_history(history, unhealthy), min_history=3, window_days=7)
        unhealthy |= {(m.site, m.asset_id, day) for m in scored if m.score < 50}
        history += today
    assert {asset for _, asset, _ in unhealthy} == {"m-2"}
    assert len(unhealthy) == 3  # the days of wear

    repaired = _plant_day(99, None, DAY, (0.0, 0.0))
    learnt = score_machines(repaired, healthy_history(history, unhealthy), min_history=3, window_days=7)
    assert all(m.score >= 60 for m in learnt), [(m.asset_id, m.score) for m in learnt]  # its open alert closes
    assert "history" in next(m for m in learnt if m.asset_id == "m-2").basis
    # Why the sick days are left out: against them, the repaired machine itself looks unhealthy.
    naive = score_machines(repaired, history, min_history=3, window_days=7)
    assert next(m for m in naive if m.asset_id == "m-2").score < 50


def test_a_sensor_with_nothing_to_compare_with_does_not_dilute_its_machine() -> None:
    # A vibration sensor with three days of history, today far off; a pressure sensor new today, the only one of
    # its quantity on the site (no history, no peers): it says nothing, so the machine is as far off as the first.
    normal: dict[str, float | None] = {
        "mean": 1.0,
        "std": 0.1,
        "rms": 1.0,
        "p95": 1.2,
        "kurtosis": 0.0,
        "crest_factor": 1.5,
    }
    off: dict[str, float | None] = {**normal, "kurtosis": 12.0, "crest_factor": 8.0}

    def sensor(quantity: str, day: date, features: dict[str, float | None]) -> SensorDay:
        return SensorDay(f"m-0-{quantity}", "m-0", "site", quantity, "press", day, features)

    history = [sensor("vibration", DAY - timedelta(days=i), normal) for i in (1, 2, 3)]
    today = [sensor("vibration", DAY, off), sensor("pressure", DAY, normal)]
    (machine,) = score_machines(today, history, min_history=3, window_days=7)
    assert machine.basis == "history+none"
    assert machine.deviation == pytest.approx(10.0)  # both z-scores capped; not halved by the pressure sensor
    assert machine.score < 5
    (alone,) = score_machines([sensor("pressure", DAY, normal)], [], min_history=3, window_days=7)
    assert (alone.basis, alone.score) == ("none", 100.0)


def test_healthy_plant_has_no_unhealthy_machine() -> None:
    machines = score_machines(_plant_day(5, None, DAY, (0, 0)), [], min_history=3, window_days=7)
    assert all(m.score >= 50 for m in machines), [(m.asset_id, m.score) for m in machines]


def test_robust_z_and_trend() -> None:
    assert robust_z(10.0, [10.0, 10.0, 10.0]) == 0.0
    # MAD of [1, 2, 3, 4, 5] is 1, scaled 1.4826; 9 is (9 - 3) / 1.4826 away.
    assert robust_z(9.0, [1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(6 / 1.4826)
    assert robust_z(1e9, [1.0, 2.0, 3.0]) == 10.0  # capped
    assert relative_trend([1.0, 2.0]) is None
    assert relative_trend([10.0, 11.0, 12.0]) == pytest.approx(1 / 11)
    # Days -7, -6, -5 and today: the rise is spread over 7 days, not 3 (an idle plant left a gap).
    # Least squares by hand: Sxy = 0.45 and Sxx = 29 around the means; the median is 1.0.
    assert relative_trend([1.0, 1.0, 1.0, 1.1], [-7.0, -6.0, -5.0, 0.0]) == pytest.approx(0.45 / 29)
    assert relative_trend([1.0, 1.0, 1.0, 1.1]) == pytest.approx(0.03)  # as if consecutive: twice as steep


def test_features_cover_the_stats_table() -> None:
    from jobs.nightly.tables import DAILY_SENSOR_STATS

    assert all(f" {f} DOUBLE" in DAILY_SENSOR_STATS.ddl for f in FEATURES)


def test_same_asset_id_on_two_sites_is_two_machines() -> None:
    # Asset ids are unique only within a site: plant A's m-0 and plant B's m-0 are scored apart.
    site_a = _plant_day(1, None, DAY, (0.0, 0.0))
    site_b = [
        SensorDay(d.sensor_id + "-b", d.asset_id, "site-b", d.quantity, d.machine_kind, d.day, d.features)
        for d in _plant_day(2, None, DAY, (0.0, 0.0))
    ]
    machines = score_machines(site_a + site_b, [], min_history=3, window_days=14)
    assert sorted((m.site, m.asset_id) for m in machines) == sorted(
        [("site", f"m-{i}") for i in range(6)] + [("site-b", f"m-{i}") for i in range(6)]
    )
    assert all(m.sensors == len(KINDS) for m in machines)
