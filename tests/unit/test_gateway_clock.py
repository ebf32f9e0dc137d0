"""Gateway simulator clocks: offset and drift math, NTP reports, and the times packages carry."""

from __future__ import annotations

import numpy as np
import pytest

from connectors.gateway.clock import ClockModel, draw_clocks, iso_us, parse_us, to_datetime, to_us
from connectors.gateway.faults import FaultRates
from connectors.gateway.plant import PlantConfig, build_plant
from connectors.gateway.simulate import LATENCY_US, build, sample_times

pytestmark = pytest.mark.unit

REF = 1_795_420_800_000_000  # 2026-11-23T08:00:00Z
HOUR_US = 3_600 * 1_000_000


def test_offset_and_drift() -> None:
    clock = ClockModel(offset_ms=250.0, drift_ppm=40.0, reference_us=REF)
    true = np.array([REF, REF + HOUR_US], dtype=np.int64)
    gateway = clock.to_gateway_us(true)
    # 250 ms at the reference; 40 ppm of an hour = 144 ms more an hour later.
    assert (gateway - true).tolist() == [250_000, 250_000 + 144_000]


def test_to_true_inverts_to_gateway() -> None:
    clock = ClockModel(offset_ms=-1234.567, drift_ppm=-80.0, reference_us=REF)
    true = REF + np.arange(0, 48 * HOUR_US, 7_777_777, dtype=np.int64)
    assert np.max(np.abs(clock.to_true_us(clock.to_gateway_us(true)) - true)) <= 1


def test_reported_offset_is_the_correction() -> None:
    clock = ClockModel(offset_ms=500.0, drift_ppm=10.0, reference_us=REF)
    at = REF + HOUR_US
    reported = clock.reported_offset_ms(at)
    assert reported is not None
    assert reported == pytest.approx(-536.0)
    # true = gateway + offset, as contracts/README.md defines clock_offset_ms
    assert clock.gateway_us(at) + round(reported * 1000) == at
    assert ClockModel(offset_ms=500.0, reports_ntp=False).reported_offset_ms(at) is None
    assert str(ClockModel().reported_offset_ms(at)) == "0.0"  # never -0.0 on the wire


def test_draw_clocks_skews_the_last_gateways_and_alternates_ntp() -> None:
    clocks = draw_clocks(np.random.default_rng(0), 5, 3, 2000.0, 50.0, REF)
    assert [c.reports_ntp for c in clocks] == [True, True, False, True, False]
    for c in clocks[:2]:
        assert abs(c.offset_ms) <= 5
        assert abs(c.drift_ppm) <= 2
    for c in clocks[2:]:
        assert 500 <= abs(c.offset_ms) <= 2000
        assert 12.5 <= abs(c.drift_ppm) <= 50
    assert all(c.reference_us == REF for c in clocks)


def test_time_wire_helpers_are_exact() -> None:
    for us in (REF, REF + 1, REF + 999_999, 0):
        assert to_us(to_datetime(us)) == us
        assert parse_us(iso_us(us)) == us
    assert iso_us(REF + 20_000) == "2026-11-23T08:00:00.020000Z"


def test_package_times_are_on_the_gateway_clock() -> None:
    plant = build_plant(PlantConfig(gateways=2, skewed_gateways=1, max_clock_offset_ms=3000, max_drift_ppm=200))
    rates = FaultRates(outlier_rate=0, null_rate=0, gap_rate=0, stuck_rate=0)
    for sensor in (plant.sensors[0], plant.sensors[-1]):
        clock = plant.clock(sensor.gateway_id)
        built = build(plant, sensor, 7, rates, 0)
        assert built is not None
        assert built[0].samples is not None
        true = sample_times(plant, sensor, 7)
        assert built[0].samples.t == clock.to_gateway_us(true).tolist()
        assert np.all(np.diff(built[0].samples.t) > 0)
        sent_true = plant.start_us + 8 * plant.window_us + LATENCY_US  # now_us=0: sent right after the window
        assert to_us(built[0].sent_at) == clock.gateway_us(sent_true)
        assert built[0].clock_offset_ms == clock.reported_offset_ms(sent_true)
    assert {plant.clock(s.gateway_id).reports_ntp for s in (plant.sensors[0], plant.sensors[-1])} == {True, False}
