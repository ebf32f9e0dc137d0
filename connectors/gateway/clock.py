"""Per-gateway clock model: a constant offset plus a linear drift.

gateway time = true time + error(t), with error(t) = offset + drift * (t - reference).
A gateway that runs NTP knows its error and reports `clock_offset_ms` as the
correction Vigil must add (true = gateway + offset), i.e. the negative of the error.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# Keeps the model physical: beyond this a 1 kHz sample grid could stop increasing on the gateway clock.
MAX_DRIFT_PPM = 1000.0


class ClockModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    offset_ms: float = Field(default=0.0, description="gateway minus true time at the reference instant")
    drift_ppm: float = Field(default=0.0, ge=-MAX_DRIFT_PPM, le=MAX_DRIFT_PPM)
    reports_ntp: bool = Field(default=True, description="whether packages carry clock_offset_ms")
    reference_us: int = Field(default=0, description="true time (µs since epoch) at which the error equals offset")

    def error_us(self, true_us: NDArray[np.int64]) -> NDArray[np.float64]:
        """Gateway minus true time, in µs, at each true instant."""
        elapsed = (true_us - self.reference_us).astype(np.float64)
        return self.offset_ms * 1000.0 + self.drift_ppm * 1e-6 * elapsed

    def to_gateway_us(self, true_us: NDArray[np.int64]) -> NDArray[np.int64]:
        return true_us + np.rint(self.error_us(true_us)).astype(np.int64)

    def to_true_us(self, gateway_us: NDArray[np.int64]) -> NDArray[np.int64]:
        """Inverse of `to_gateway_us` (to within 1 µs of rounding): what a perfect correction recovers."""
        rate = 1.0 + self.drift_ppm * 1e-6
        shifted = (gateway_us - self.reference_us).astype(np.float64) - self.offset_ms * 1000.0
        return self.reference_us + np.rint(shifted / rate).astype(np.int64)

    def gateway_us(self, true_us: int) -> int:
        return int(self.to_gateway_us(np.array([true_us], dtype=np.int64))[0])

    def reported_offset_ms(self, true_us: int) -> float | None:
        """What an NTP-synced gateway puts in `clock_offset_ms` at `true_us`; None if it does not report."""
        if not self.reports_ntp:
            return None
        error = float(self.error_us(np.array([true_us], dtype=np.int64))[0])
        return round(-error / 1000.0, 3) + 0.0  # + 0.0 turns -0.0 into 0.0 on the wire


def draw_clocks(
    rng: np.random.Generator,
    gateways: int,
    skewed: int,
    max_offset_ms: float,
    max_drift_ppm: float,
    reference_us: int,
) -> list[ClockModel]:
    """Clocks for `gateways` gateways; the last `skewed` of them are off by a lot.

    Well-synced gateways still err by a few ms (NTP over a plant LAN) and report it.
    Skewed ones alternate: the first does not report its (large) error, the next one
    does, so the stream sees both the estimated (harder) and the reported case.
    """
    clocks: list[ClockModel] = []
    first_skewed = gateways - min(skewed, gateways)
    for index in range(gateways):
        if index < first_skewed:
            offset = float(rng.uniform(-5.0, 5.0))
            drift = float(rng.uniform(-2.0, 2.0))
            reports = True
        else:
            sign = rng.choice([-1.0, 1.0], size=2)
            offset = float(sign[0] * rng.uniform(0.25, 1.0) * max_offset_ms)
            drift = float(sign[1] * rng.uniform(0.25, 1.0) * max_drift_ppm)
            reports = (index - first_skewed) % 2 == 1
        clocks.append(
            ClockModel(
                offset_ms=round(offset, 3),
                drift_ppm=round(drift, 3),
                reports_ntp=reports,
                reference_us=reference_us,
            )
        )
    return clocks


def to_datetime(us: int) -> datetime:
    """µs since the epoch -> aware UTC datetime, exactly (no float round trip)."""
    return EPOCH + timedelta(microseconds=int(us))


def to_us(moment: datetime) -> int:
    return (moment.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)


def iso_us(us: int) -> str:
    """The wire form of a timestamp: ISO-8601 UTC with microseconds and a Z."""
    return to_datetime(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_us(text: str) -> int:
    return to_us(datetime.fromisoformat(text))
