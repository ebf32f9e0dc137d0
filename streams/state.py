"""Per-key state kept in Faust tables, as plain JSON (tables replicate it to changelog topics)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from streams.alerts import Episode, SensorAlertState
from streams.clock import SkewWindow
from streams.pipeline import SensorState
from streams.quality import HampelTail


def sensor_state_to_json(state: SensorState) -> dict[str, Any]:
    alerts = state.alerts
    return {
        "tail": {"values": list(state.tail.values), "last_t_us": state.tail.last_t_us},
        "alerts": {
            "episodes": [[name, asdict(episode)] for name, episode in alerts.episodes],
            "last_mean": alerts.last_mean,
            "last_end_us": alerts.last_end_us,
        },
    }


def sensor_state_from_json(data: dict[str, Any] | None) -> SensorState:
    if not data:
        return SensorState()
    tail = data.get("tail") or {}
    alerts = data.get("alerts") or {}
    return SensorState(
        tail=HampelTail(values=tuple(tail.get("values", ())), last_t_us=tail.get("last_t_us")),
        alerts=SensorAlertState(
            episodes=tuple((name, Episode(**episode)) for name, episode in alerts.get("episodes", ())),
            last_mean=alerts.get("last_mean"),
            last_end_us=alerts.get("last_end_us"),
        ),
    )


@dataclass(frozen=True, slots=True)
class GatewayClock:
    """One gateway's skew observations and its clock-skew alert episode."""

    window: SkewWindow = field(default_factory=SkewWindow)
    episode: Episode = field(default_factory=Episode)


def gateway_clock_to_json(clock: GatewayClock) -> dict[str, Any]:
    # By hand: dataclasses.asdict deep-copies every float of the window, which profiled as the worker's hottest path.
    return {
        "window": {"append_ms": list(clock.window.append_ms), "gap_ms": list(clock.window.gap_ms)},
        "episode": asdict(clock.episode),
    }


def gateway_clock_from_json(data: dict[str, Any] | None) -> GatewayClock:
    if not data:
        return GatewayClock()
    window = data.get("window") or {}
    return GatewayClock(
        window=SkewWindow(tuple(window.get("append_ms", ())), tuple(window.get("gap_ms", ()))),
        episode=Episode(**(data.get("episode") or {})),
    )
