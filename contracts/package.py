"""The edge package: what a gateway sends to `edge.packages.v1`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final, Literal, Self
from uuid import UUID

import numpy as np
from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from contracts._base import Contract, GatewayId, UtcDatetime
from contracts.jsonld import CONTEXT_V1

MAX_SAMPLES: Final = 100_000
"""More samples than this in one package is `oversized`: split the window."""

MAX_CLOCK_OFFSET_MS: Final = 86_400_000.0

FeatureName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class Window(Contract):
    """The collection window on the gateway's clock; every sample time lies inside it."""

    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise PydanticCustomError("window_reversed", "window end is before its start")
        return self


class Samples(Contract):
    """Raw samples in columnar form.

    `t`: sample times in integer microseconds since the Unix epoch (UTC, gateway clock), strictly increasing.
    `v`: values in the sensor's declared unit; `null` marks a sample the sensor failed to read.
    """

    t: list[int] = Field(min_length=1, max_length=MAX_SAMPLES)
    v: list[float | None] = Field(min_length=1, max_length=MAX_SAMPLES)

    @field_validator("v")
    @classmethod
    def _finite(cls, v: list[float | None]) -> list[float | None]:
        # Vectorised: this runs on every accepted package, on the stream stage's hot path.
        values = _float_array(v)
        for index in np.flatnonzero(~np.isfinite(values)).tolist():
            if v[index] is not None:  # a NaN or infinity sent as a number (json.loads reads those tokens)
                raise PydanticCustomError(
                    "non_finite_value",
                    "value at index {index} is not a finite number (use null for a missing reading)",
                    {"index": index},
                )
        _converted.append((v, values))  # for _consistent, which caches the arrays: one conversion, not two
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(self.t) != len(self.v):
            raise PydanticCustomError(
                "length_mismatch", "t has {nt} entries but v has {nv}", {"nt": len(self.t), "nv": len(self.v)}
            )
        t = np.asarray(self.t, dtype=np.int64)
        back = np.flatnonzero(t[1:] <= t[:-1])
        if back.size:
            raise PydanticCustomError(
                "time_not_monotonic",
                "sample time at index {index} does not increase over the previous one",
                {"index": int(back[0]) + 1},
            )
        converted = _converted.pop() if _converted else None
        _converted.clear()
        values = converted[1] if converted is not None and converted[0] is self.v else _float_array(self.v)
        self.__dict__[_ARRAYS] = SampleArrays(t, values, self.t, self.v)
        return self

    def arrays(self) -> SampleArrays:
        """`t` and `v` as read-only numpy arrays (int64 µs; float64 with NaN for null), made once per model.

        Validation already builds them; a model made otherwise (model_construct, model_copy with new t or v)
        gets fresh ones, because the cache remembers which lists it was made from.
        """
        cached: SampleArrays | None = self.__dict__.get(_ARRAYS)
        if cached is None or cached.of_t is not self.t or cached.of_v is not self.v:
            cached = SampleArrays(np.asarray(self.t, dtype=np.int64), _float_array(self.v), self.t, self.v)
            self.__dict__[_ARRAYS] = cached
        return cached


_ARRAYS: Final = "_sample_arrays"
# `v` as converted by the field validator, taken by the model validator if it is still the same list (a list
# converted by one validation is never mistaken for another's: the identity check would fail).
_converted: list[tuple[list[float | None], np.ndarray]] = []


@dataclass(frozen=True, eq=False, slots=True)
class SampleArrays:
    """A cache, not data (identity equality: two equal packages never differ by it)."""

    t: np.ndarray
    v: np.ndarray
    of_t: list[int]
    of_v: list[float | None]

    def __post_init__(self) -> None:
        self.t.setflags(write=False)
        self.v.setflags(write=False)


def _float_array(v: list[float | None]) -> np.ndarray:
    return np.array(v, dtype=np.float64)  # null -> NaN


class ClaimCheck(Contract):
    """A large payload already stored in object storage; only this reference travels."""

    uri: str = Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$", description="s3://bucket/key")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    media_type: str = Field(pattern=r"^[\w.+-]+/[\w.+-]+$")


class EdgePackage(Contract):
    """One sensor's collection window: raw samples, smart-data features, or a claim check (exactly one)."""

    jsonld_context: Literal["https://w3id.org/vigil/contexts/v1.jsonld"] = Field(alias="@context", default=CONTEXT_V1)
    jsonld_type: Literal["EdgePackage"] = Field(alias="@type", default="EdgePackage")
    package_id: UUID
    gateway_id: GatewayId
    sensor_id: UUID
    sent_at: UtcDatetime = Field(description="when the gateway sent the package, on its own clock")
    clock_offset_ms: float | None = Field(
        default=None,
        ge=-MAX_CLOCK_OFFSET_MS,
        le=MAX_CLOCK_OFFSET_MS,
        allow_inf_nan=False,
        description="gateway clock error from NTP: true time = gateway time + offset",
    )
    window: Window
    samples: Samples | None = None
    features: dict[FeatureName, Annotated[float, Field(allow_inf_nan=False)]] | None = None
    claim: ClaimCheck | None = None

    @model_validator(mode="after")
    def _one_payload(self) -> Self:
        given = [name for name in ("samples", "features", "claim") if getattr(self, name) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "payload_kind", "exactly one of samples, features or claim is required (got {given})", {"given": given}
            )
        if self.samples is not None:
            lo = int(self.window.start.timestamp() * 1_000_000)
            hi = int(self.window.end.timestamp() * 1_000_000)
            if self.samples.t[0] < lo or self.samples.t[-1] > hi:
                raise PydanticCustomError("sample_outside_window", "sample times fall outside the collection window")
        return self

    @property
    def kind(self) -> Literal["samples", "features", "claim"]:
        if self.samples is not None:
            return "samples"
        return "features" if self.features is not None else "claim"

    def to_wire(self) -> bytes:
        """Compact JSON-LD, as a gateway sends it."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()

    @classmethod
    def from_wire(cls, payload: bytes | str) -> EdgePackage:
        return cls.model_validate_json(payload)
