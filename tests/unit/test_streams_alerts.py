"""streams.alerts: rules file validation, hysteresis, deadband, thresholds, rate of change, quality and clock skew."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts import Alert, AlertSource, AlertState, Quantity, Severity
from streams.alerts import (
    DEFAULT_RULES,
    Check,
    Episode,
    Observation,
    RuleSet,
    SensorAlertState,
    Subject,
    ThresholdRule,
    cleared,
    evaluate,
    evaluate_clock,
    load_rules,
    step,
    threshold_checks,
)

pytestmark = pytest.mark.unit

T0_US = 1_795_420_800_000_000  # 2026-11-23T08:00:00Z
SECOND_US = 1_000_000
NOW = datetime(2026, 11, 23, 8, 5, tzinfo=UTC)
SENSOR_ID = uuid.UUID("6f1c2a0e-4b7d-4e8a-9c51-2f3d8e9a0b11")
SUBJECT = Subject("press-01", "plant-a", SENSOR_ID, "gw-plant-a-01")
LIMITS: dict[str, float | None] = {
    "warning_high": 80.0,
    "critical_high": 95.0,
    "warning_low": 10.0,
    "critical_low": 0.0,
}
RULES = load_rules()


def _window(i: int) -> tuple[int, int]:
    return (T0_US + i * SECOND_US, T0_US + (i + 1) * SECOND_US)


def _utc(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def _check(breached: bool, rule: str = "warning_high") -> Check:
    return Check(rule, breached, Severity.WARNING, 85.0 if breached else 70.0, 80.0, "mean vs warning_high")


def _run_steps(breaches: list[bool], *, open_after: int, close_after: int) -> tuple[list[tuple[int, Alert]], Episode]:
    state = Episode()
    alerts = []
    for i, breached in enumerate(breaches):
        alert, state = step(
            _check(breached),
            state,
            open_after=open_after,
            close_after=close_after,
            subject=SUBJECT,
            window=_window(i),
            now=NOW,
        )
        if alert is not None:
            alerts.append((i, alert))
    return alerts, state


def _obs(i: int, mean: float | None, *, bad_share: float = 0.0, spread: float = 0.0) -> Observation:
    start, end = _window(i)
    return Observation(
        mean=mean,
        max=None if mean is None else mean + spread,
        min=None if mean is None else mean - spread,
        p95=None if mean is None else mean + spread * 0.9,
        rms=None if mean is None else abs(mean),
        bad_share=bad_share,
        window_start_us=start,
        window_end_us=end,
        clock_offset_ms=None,
    )


def _feed(
    means: list[float | None],
    *,
    rules: RuleSet = RULES,
    quantity: Quantity = Quantity.TEMPERATURE,
    limits: dict[str, float | None] | None = None,
    bad_shares: list[float] | None = None,
) -> tuple[list[tuple[int, Alert]], SensorAlertState]:
    state = SensorAlertState()
    out: list[tuple[int, Alert]] = []
    for i, mean in enumerate(means):
        share = bad_shares[i] if bad_shares else 0.0
        alerts, state = evaluate(
            rules,
            _obs(i, mean, bad_share=share),
            quantity=quantity,
            unit="degC",
            limits=LIMITS if limits is None else limits,
            state=state,
            subject=SUBJECT,
            now=NOW,
        )
        out.extend((i, alert) for alert in alerts)
    return out, state


def _events(alerts: list[tuple[int, Alert]], rule: str) -> list[tuple[int, AlertState]]:
    return [(i, a.state) for i, a in alerts if a.rule == rule]


# --- rules file -------------------------------------------------------------------------------------------------


def test_shipped_rules_load() -> None:
    rules = load_rules(DEFAULT_RULES)
    assert rules.threshold.enabled
    assert (rules.threshold.statistic, rules.threshold.open_after, rules.threshold.close_after) == ("mean", 2, 3)
    assert rules.threshold.deadband == 0.02
    assert rules.rate_of_change.limits[Quantity.TEMPERATURE] == 2.0
    assert set(rules.rate_of_change.limits) == {Quantity.TEMPERATURE, Quantity.PRESSURE, Quantity.ELECTRIC_CURRENT}
    assert (rules.quality.max_bad_share, rules.quality.open_after, rules.quality.close_after) == (0.2, 3, 3)
    assert (rules.clock_skew.max_abs_offset_ms, rules.clock_skew.open_after, rules.clock_skew.close_after) == (
        2000.0,
        1,
        5,
    )


def test_empty_rules_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("")
    assert load_rules(path) == RuleSet()


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        ("[threshold]\nopen_afterr = 2\n", ("threshold", "open_afterr")),
        ("[threshold]\nopen_after = 0\n", ("threshold", "open_after")),
        ("[threshold]\nstatistic = 'median'\n", ("threshold", "statistic")),
        ("[threshold]\ndeadband = 1.5\n", ("threshold", "deadband")),
        ("[quality]\nmax_bad_share = 0\n", ("quality", "max_bad_share")),
        ("[clock_skew]\nmax_abs_offset_ms = 'lots'\n", ("clock_skew", "max_abs_offset_ms")),
        ("[rate_of_change]\nlimits = { tempurature = 2.0 }\n", ("rate_of_change", "limits", "tempurature", "[key]")),
        ("[bogus]\nenabled = true\n", ("bogus",)),
    ],
)
def test_bad_rules_file_names_the_key(tmp_path: Path, text: str, loc: tuple[str, ...]) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(ValidationError) as caught:
        load_rules(path)
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [loc]
    assert ".".join(loc) in str(caught.value)


# --- hysteresis -------------------------------------------------------------------------------------------------


def test_one_episode_gives_one_open_and_one_close() -> None:
    alerts, state = _run_steps([True, True, True, False, False, False], open_after=2, close_after=3)
    assert [(i, a.state) for i, a in alerts] == [(1, AlertState.OPEN), (5, AlertState.CLOSE)]
    opened, closed = alerts[0][1], alerts[1][1]
    assert opened.episode_id == closed.episode_id
    assert opened.alert_id != closed.alert_id
    # The close covers the whole episode: from the opening window's start to the closing window's end.
    assert opened.window_start == _utc(_window(1)[0])
    assert closed.window_start == _utc(_window(1)[0])
    assert closed.window_end == _utc(_window(5)[1])
    assert state == Episode()


def test_flapping_never_opens() -> None:
    alerts, state = _run_steps([True, False] * 10, open_after=2, close_after=3)
    assert alerts == []
    assert not state.open


def test_a_breach_while_clearing_restarts_the_close_count() -> None:
    alerts, state = _run_steps([True, True, False, False, True, False, False], open_after=2, close_after=3)
    assert [(i, a.state) for i, a in alerts] == [(1, AlertState.OPEN)]
    assert state.open
    assert state.clears == 2


@settings(max_examples=200, deadline=None)
@given(
    breaches=st.lists(st.booleans(), max_size=60),
    open_after=st.integers(1, 4),
    close_after=st.integers(1, 4),
)
def test_hysteresis_invariants(breaches: list[bool], open_after: int, close_after: int) -> None:
    alerts, state = _run_steps(breaches, open_after=open_after, close_after=close_after)
    states = [a.state for _, a in alerts]
    # Opens and closes alternate, starting with an open; each close carries its open's episode id.
    assert states == [AlertState.OPEN, AlertState.CLOSE] * (len(states) // 2) + [AlertState.OPEN] * (len(states) % 2)
    for (_, opened), (_, closed) in zip(alerts[::2], alerts[1::2], strict=False):
        assert opened.episode_id == closed.episode_id
    assert len({a.episode_id for _, a in alerts if a.state is AlertState.OPEN}) == states.count(AlertState.OPEN)
    # An open follows `open_after` consecutive breaches, a close `close_after` consecutive clears.
    for i, alert in alerts:
        if alert.state is AlertState.OPEN:
            assert i + 1 >= open_after
            assert all(breaches[i - open_after + 1 : i + 1])
        else:
            assert i + 1 >= close_after
            assert not any(breaches[i - close_after + 1 : i + 1])
    assert state.open == (len(states) % 2 == 1)
    # A trailing run of `open_after` breaches always leaves the episode open.
    run = 0
    for b in breaches:
        run = run + 1 if b else 0
    if run >= open_after:
        assert state.open


# --- thresholds and deadband ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mean", "expected"),
    [
        (50.0, set()),
        (85.0, {"warning_high"}),
        (96.0, {"warning_high", "critical_high"}),
        (5.0, {"warning_low"}),
        (-1.0, {"warning_low", "critical_low"}),
        (80.0, set()),  # at the threshold is not beyond it
        (10.0, set()),
    ],
)
def test_threshold_direction(mean: float, expected: set[str]) -> None:
    checks = threshold_checks(RULES, _obs(0, mean), LIMITS, "degC")
    assert {c.rule for c in checks} == set(LIMITS)
    assert {c.rule for c in checks if c.breached} == expected
    for c in checks:
        assert c.severity is (Severity.CRITICAL if c.rule.startswith("critical") else Severity.WARNING)
        assert c.value == mean
        assert c.threshold == LIMITS[c.rule]
        assert c.rule in c.message
        assert "degC" in c.message


def test_threshold_skips_absent_limits_and_missing_values() -> None:
    limits: dict[str, float | None] = {"warning_high": 80.0, "critical_high": None}
    assert [c.rule for c in threshold_checks(RULES, _obs(0, 90.0), limits, "degC")] == ["warning_high"]
    checks = threshold_checks(RULES, _obs(0, None), LIMITS, "degC")
    assert not any(c.breached for c in checks)


def test_threshold_statistic_max_compares_min_with_low_limits() -> None:
    rules = RuleSet(threshold=ThresholdRule(statistic="max"))
    obs = _obs(0, 50.0, spread=45.0)  # max 95 (> 80 and not > 95), min 5 (< 10 and not < 0)
    breached = {c.rule: c.value for c in threshold_checks(rules, obs, LIMITS, "degC") if c.breached}
    assert breached == {"warning_high": 95.0, "warning_low": 5.0}


def test_cleared_applies_the_deadband() -> None:
    high = Check("warning_high", False, Severity.WARNING, 79.0, 80.0, "")
    assert cleared(high, 0.02).breached  # 79 > 80 - 1.6: still inside the band
    assert not cleared(_with_value(high, 78.0), 0.02).breached
    low = Check("warning_low", False, Severity.WARNING, 10.1, 10.0, "")
    assert cleared(low, 0.02).breached  # 10.1 < 10 + 0.2
    assert not cleared(_with_value(low, 10.5), 0.02).breached
    breached = Check("warning_high", True, Severity.WARNING, 85.0, 80.0, "")
    assert cleared(breached, 0.02) == breached
    missing = Check("warning_high", False, Severity.WARNING, None, 80.0, "")
    assert cleared(missing, 0.02) == missing


def _with_value(check: Check, value: float) -> Check:
    return Check(check.rule, check.breached, check.severity, value, check.threshold, check.message)


def test_deadband_keeps_an_open_episode_open() -> None:
    # open_after=2: opens on the 2nd package at 85; 79 is inside the band and counts as a breach; 78 clears.
    means: list[float | None] = [85.0, 85.0, 79.0, 79.0, 79.0, 79.0, 78.0, 78.0, 78.0]
    alerts, _ = _feed(means)
    assert _events(alerts, "warning_high") == [(1, AlertState.OPEN), (8, AlertState.CLOSE)]


def test_deadband_does_not_open_an_episode() -> None:
    alerts, state = _feed([79.5] * 10)
    assert _events(alerts, "warning_high") == []
    assert not dict(state.episodes)["warning_high"].open


def test_critical_and_warning_are_separate_episodes() -> None:
    alerts, _ = _feed([96.0, 96.0, 90.0, 90.0, 90.0, 50.0, 50.0, 50.0])
    assert _events(alerts, "critical_high") == [(1, AlertState.OPEN), (4, AlertState.CLOSE)]
    assert _events(alerts, "warning_high") == [(1, AlertState.OPEN), (7, AlertState.CLOSE)]
    severities = {a.rule: a.severity for _, a in alerts if a.rule.endswith("high")}
    assert severities == {"critical_high": Severity.CRITICAL, "warning_high": Severity.WARNING}


def test_packages_without_good_samples_neither_open_nor_clear_thresholds() -> None:
    # A sensor pushed beyond its range yields no ok samples (mean None): that is no evidence the condition cleared.
    rules = RuleSet(threshold=RULES.threshold)
    alerts, state = _feed([90.0, 90.0, None, None, None, None], rules=rules)
    assert _events(alerts, "warning_high") == [(1, AlertState.OPEN)]
    assert dict(state.episodes)["warning_high"].open
    alerts, _ = _feed([90.0, 90.0, None, None, None, None, 50.0, 50.0, 50.0], rules=rules)
    assert _events(alerts, "warning_high") == [(1, AlertState.OPEN), (8, AlertState.CLOSE)]
    alerts, _ = _feed([None, 90.0, None, 90.0, None], rules=rules)  # the no-data packages do not break a run
    assert _events(alerts, "warning_high") == [(3, AlertState.OPEN)]


# --- rate of change ---------------------------------------------------------------------------------------------


def test_rate_of_change_opens_on_a_jump() -> None:
    alerts, state = _feed([20.0, 20.5, 26.0, 26.5], limits={})  # 5.5 degC in 1 s against a 2 degC/s limit
    events = _events(alerts, "rate_of_change")
    assert events == [(2, AlertState.OPEN)]
    opened = alerts[0][1]
    assert opened.value == pytest.approx(5.5)
    assert opened.threshold == 2.0
    assert state.last_mean == 26.5
    assert state.last_end_us == _window(3)[1]


def test_rate_of_change_ignores_a_slow_ramp() -> None:
    alerts, _ = _feed([20.0 + 1.5 * i for i in range(20)], limits={})  # 1.5 degC/s
    assert _events(alerts, "rate_of_change") == []


def test_rate_of_change_only_for_quantities_with_a_limit() -> None:
    alerts, state = _feed([0.0, 100.0, 0.0], quantity=Quantity.ACCELERATION, limits={})
    assert alerts == []
    assert "rate_of_change" not in dict(state.episodes)


# --- quality ----------------------------------------------------------------------------------------------------


def test_sustained_bad_quality() -> None:
    shares = [0.5, 0.5, 0.2, 0.5, 0.5, 0.5, 0.5, 0.0, 0.1, 0.0]
    alerts, _ = _feed([50.0] * len(shares), bad_shares=shares, limits={})
    # 0.2 is not above the 0.2 limit and breaks the run; open on the 3rd consecutive breach, close on the 3rd clear.
    assert _events(alerts, "sustained_bad_quality") == [(5, AlertState.OPEN), (9, AlertState.CLOSE)]
    opened = alerts[0][1]
    assert opened.value == 0.5
    assert opened.threshold == 0.2
    assert opened.severity is Severity.WARNING


def test_disabled_rules_raise_nothing() -> None:
    rules = RuleSet.model_validate(
        {name: {"enabled": False} for name in ("threshold", "rate_of_change", "quality", "clock_skew")}
    )
    alerts, state = _feed([90.0, 200.0, 90.0, 200.0], rules=rules, bad_shares=[1.0] * 4)
    assert alerts == []
    assert state.episodes == ()
    assert evaluate_clock(rules, 1e6, Episode(), subject=SUBJECT, window=_window(0), now=NOW) == (None, Episode())


# --- clock skew -------------------------------------------------------------------------------------------------


def test_clock_skew_opens_and_closes() -> None:
    offsets = [100.0, 2000.0, -2500.0, 3000.0, 10.0, 10.0, 10.0, 10.0, -10.0, 10.0]
    state = Episode()
    events = []
    for i, offset in enumerate(offsets):
        alert, state = evaluate_clock(RULES, offset, state, subject=SUBJECT, window=_window(i), now=NOW)
        if alert is not None:
            events.append((i, alert))
    assert [(i, a.state) for i, a in events] == [(2, AlertState.OPEN), (8, AlertState.CLOSE)]
    opened, closed = events[0][1], events[1][1]
    assert opened.rule == "clock_skew"
    assert opened.value == -2500.0
    assert opened.threshold == 2000.0
    assert "-2500 ms" in opened.message
    assert opened.episode_id == closed.episode_id
    assert closed.window_start == _utc(_window(2)[0])
    assert closed.window_end == _utc(_window(8)[1])
    assert not state.open
    assert state.episode_id is None


# --- the alert itself -------------------------------------------------------------------------------------------


def test_alert_fields() -> None:
    alerts, _ = _feed([90.0, 90.0, 50.0, 50.0, 50.0])
    (i_open, opened), (i_close, closed) = [(i, a) for i, a in alerts if a.rule == "warning_high"]
    for alert in (opened, closed):
        assert alert.window_start.tzinfo is not None
        assert alert.window_start.utcoffset() == timedelta(0)
        assert alert.window_end.utcoffset() == timedelta(0)
        assert alert.window_start <= alert.window_end
        assert alert.raised_at == NOW
        assert alert.message.startswith("warning_high ")
        assert (alert.asset_id, alert.site, alert.sensor_id, alert.gateway_id) == (
            "press-01",
            "plant-a",
            SENSOR_ID,
            "gw-plant-a-01",
        )
        assert alert.source is AlertSource.STREAM
        assert alert.threshold == 80.0
        # Valid on the wire too.
        assert Alert.model_validate_json(alert.model_dump_json()) == alert
    assert (opened.window_start, opened.window_end) == (_utc(_window(i_open)[0]), _utc(_window(i_open)[1]))
    assert (closed.window_start, closed.window_end) == (_utc(_window(i_open)[0]), _utc(_window(i_close)[1]))
    assert "opened" in opened.message
    assert "cleared" in closed.message
    assert (opened.value, closed.value) == (90.0, 50.0)


def test_close_after_an_out_of_order_package_has_a_valid_window() -> None:
    from datetime import UTC, datetime

    from streams.alerts import Check, Episode, Subject, step

    subject = Subject("m-1", None, None, None)
    breach = Check("warning_high", True, Severity.WARNING, 9.0, 5.0, "hot")
    clear = Check("warning_high", False, Severity.WARNING, 1.0, 5.0, "cool")
    now = datetime.now(UTC)
    _, state = step(
        breach, Episode(), open_after=1, close_after=1, subject=subject, window=(5_000_000, 6_000_000), now=now
    )
    alert, _ = step(clear, state, open_after=1, close_after=1, subject=subject, window=(1_000_000, 2_000_000), now=now)
    assert alert is not None
    assert alert.state.value == "close"
    assert alert.window_start <= alert.window_end
