"""Stage 6, alerts: rules over the enriched stream, with hysteresis (DS-4).

Pure: `evaluate` takes the rule set, one observation and the previous episode
states, and returns the alerts to publish and the new states. Rules live in
`rules.toml`; `load_rules` validates them at start.
"""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import Alert, AlertSource, AlertState, Quantity, Severity

DEFAULT_RULES: Final = Path(__file__).resolve().parent / "rules.toml"


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = True
    open_after: int = Field(default=1, ge=1)
    close_after: int = Field(default=1, ge=1)


class ThresholdRule(_Rule):
    statistic: Literal["mean", "max", "p95", "rms"] = "mean"
    deadband: float = Field(default=0.02, ge=0, lt=1)


class RateOfChangeRule(_Rule):
    limits: dict[Quantity, float] = Field(default_factory=dict)


class QualityRule(_Rule):
    max_bad_share: float = Field(default=0.2, gt=0, le=1)


class ClockSkewRule(_Rule):
    max_abs_offset_ms: float = Field(default=2000.0, gt=0)


class RuleSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    threshold: ThresholdRule = ThresholdRule()
    rate_of_change: RateOfChangeRule = RateOfChangeRule()
    quality: QualityRule = QualityRule()
    clock_skew: ClockSkewRule = ClockSkewRule()


def load_rules(path: Path = DEFAULT_RULES) -> RuleSet:
    """Parse and validate a rules file; pydantic's error names the offending key."""
    with path.open("rb") as handle:
        return RuleSet.model_validate(tomllib.load(handle))


@dataclass(frozen=True, slots=True)
class Episode:
    """Hysteresis state of one (subject, rule)."""

    open: bool = False
    episode_id: str | None = None
    breaches: int = 0
    clears: int = 0
    opened_at_us: int | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """One rule's verdict on one observation."""

    rule: str
    breached: bool
    severity: Severity
    value: float | None
    threshold: float | None
    message: str


@dataclass(frozen=True, slots=True)
class Subject:
    asset_id: str
    site: str | None
    sensor_id: uuid.UUID | None
    gateway_id: str | None


def step(
    check: Check,
    state: Episode,
    *,
    open_after: int,
    close_after: int,
    subject: Subject,
    window: tuple[int, int],
    now: datetime,
) -> tuple[Alert | None, Episode]:
    """Advance one rule's hysteresis by one observation; return an alert on open or close."""
    if check.breached:
        state = replace(state, breaches=state.breaches + 1, clears=0)
        if not state.open and state.breaches >= open_after:
            episode = str(uuid.uuid4())
            state = replace(state, open=True, episode_id=episode, opened_at_us=window[0])
            return _alert(check, AlertState.OPEN, episode, subject, window, now), state
        return None, state
    state = replace(state, clears=state.clears + 1, breaches=0)
    if state.open and state.clears >= close_after:
        episode = state.episode_id or str(uuid.uuid4())
        opened = state.opened_at_us if state.opened_at_us is not None else window[0]
        # Packages can arrive out of order (parked, late, replayed): the evidence spans both ends whatever came first.
        span = (min(opened, window[0]), max(opened, window[1]))
        closed = _alert(check, AlertState.CLOSE, episode, subject, span, now)
        return closed, Episode()
    return None, state


def _alert(
    check: Check, state: AlertState, episode: str, subject: Subject, window: tuple[int, int], now: datetime
) -> Alert:
    def at(us: int) -> datetime:
        return datetime.fromtimestamp(us / 1e6, tz=UTC)

    verb = "opened" if state is AlertState.OPEN else "cleared"
    return Alert(
        alert_id=uuid.uuid4(),
        episode_id=uuid.UUID(episode),
        state=state,
        asset_id=subject.asset_id,
        site=subject.site,
        sensor_id=subject.sensor_id,
        gateway_id=subject.gateway_id,
        rule=check.rule,
        severity=check.severity,
        source=AlertSource.STREAM,
        message=f"{check.rule} {verb}: {check.message}",
        value=check.value,
        threshold=check.threshold,
        window_start=at(window[0]),
        window_end=at(window[1]),
        raised_at=now,
    )


@dataclass(frozen=True, slots=True)
class Observation:
    """What the alert rules see of one enriched package (values in canonical units, ok samples only)."""

    mean: float | None
    max: float | None
    min: float | None
    p95: float | None
    rms: float | None
    bad_share: float
    window_start_us: int
    window_end_us: int
    clock_offset_ms: float | None


def threshold_checks(rules: RuleSet, obs: Observation, limits: dict[str, float | None], unit: str) -> list[Check]:
    """Checks for each threshold the sensor's metadata defines: warning/critical, high/low."""
    rule = rules.threshold
    stat = getattr(obs, rule.statistic)
    low_stat = obs.min if rule.statistic == "max" else stat
    checks = []
    for name, limit in limits.items():
        if limit is None:
            continue
        severity = Severity.CRITICAL if name.startswith("critical") else Severity.WARNING
        high = name.endswith("high")
        value = stat if high else low_stat
        breached = value is not None and (value > limit if high else value < limit)
        message = f"{rule.statistic} {value if value is None else round(value, 4)} {unit} vs {name} {limit:g} {unit}"
        checks.append(Check(name, breached, severity, value, limit, message))
    return checks


def cleared(check: Check, deadband: float) -> Check:
    """Apply the deadband: a breached-then-recovering value counts as breached until past the band."""
    if check.breached or check.value is None or check.threshold is None:
        return check
    band = deadband * abs(check.threshold)
    near = check.value > check.threshold - band if check.rule.endswith("high") else check.value < check.threshold + band
    return replace(check, breached=near)


@dataclass(frozen=True, slots=True)
class SensorAlertState:
    """Everything the rules remember about one sensor between packages (kept in a Faust table)."""

    episodes: tuple[tuple[str, Episode], ...] = ()
    last_mean: float | None = None
    last_end_us: int | None = None


def evaluate(
    rules: RuleSet,
    obs: Observation,
    *,
    quantity: Quantity,
    unit: str,
    limits: dict[str, float | None],
    state: SensorAlertState,
    subject: Subject,
    now: datetime,
) -> tuple[list[Alert], SensorAlertState]:
    """Run every enabled sensor rule on one observation; clock skew is per gateway (`evaluate_clock`)."""
    episodes = dict(state.episodes)
    window = (obs.window_start_us, obs.window_end_us)
    planned: list[tuple[Check, _Rule]] = []
    if rules.threshold.enabled:
        for check in threshold_checks(rules, obs, limits, unit):
            if check.value is None:
                # No ok samples (e.g. a sensor driven past its range): no evidence either way, the episode holds.
                continue
            current = episodes.get(check.rule, Episode())
            planned.append((cleared(check, rules.threshold.deadband) if current.open else check, rules.threshold))
    rate_check = _rate_check(rules, obs, quantity, unit, state)
    if rate_check is not None:
        planned.append((rate_check, rules.rate_of_change))
    if rules.quality.enabled:
        share = obs.bad_share
        message = f"{share:.0%} of samples failed quality checks (limit {rules.quality.max_bad_share:.0%})"
        check = Check(
            "sustained_bad_quality",
            share > rules.quality.max_bad_share,
            Severity.WARNING,
            share,
            rules.quality.max_bad_share,
            message,
        )
        planned.append((check, rules.quality))
    alerts = []
    for check, rule in planned:
        alert, episodes[check.rule] = step(
            check,
            episodes.get(check.rule, Episode()),
            open_after=rule.open_after,
            close_after=rule.close_after,
            subject=subject,
            window=window,
            now=now,
        )
        if alert is not None:
            alerts.append(alert)
    # A late (out-of-order) package does not move the rate-of-change reference back in time.
    newer = state.last_end_us is None or obs.window_end_us > state.last_end_us
    advance = obs.mean is not None and newer
    new_state = SensorAlertState(
        episodes=tuple(sorted(episodes.items())),
        last_mean=obs.mean if advance else state.last_mean,
        last_end_us=obs.window_end_us if advance else state.last_end_us,
    )
    return alerts, new_state


def _rate_check(
    rules: RuleSet, obs: Observation, quantity: Quantity, unit: str, state: SensorAlertState
) -> Check | None:
    limit = rules.rate_of_change.limits.get(quantity)
    if not rules.rate_of_change.enabled or limit is None or obs.mean is None:
        return None
    if state.last_mean is None or state.last_end_us is None or obs.window_end_us <= state.last_end_us:
        return None
    rate = abs(obs.mean - state.last_mean) / ((obs.window_end_us - state.last_end_us) / 1e6)
    message = f"mean changes {rate:.4g} {unit}/s (limit {limit:g} {unit}/s)"
    return Check("rate_of_change", rate > limit, Severity.WARNING, rate, limit, message)


def evaluate_clock(
    rules: RuleSet, offset_ms: float, state: Episode, *, subject: Subject, window: tuple[int, int], now: datetime
) -> tuple[Alert | None, Episode]:
    """Clock-skew rule for one gateway (its subject's asset is the gateway itself)."""
    rule = rules.clock_skew
    if not rule.enabled:
        return None, state
    breached = abs(offset_ms) > rule.max_abs_offset_ms
    message = f"gateway clock off by {offset_ms:.0f} ms (limit ±{rule.max_abs_offset_ms:.0f} ms)"
    check = Check("clock_skew", breached, Severity.WARNING, offset_ms, rule.max_abs_offset_ms, message)
    return step(
        check, state, open_after=rule.open_after, close_after=rule.close_after, subject=subject, window=window, now=now
    )
