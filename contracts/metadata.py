"""Sensor metadata and sensor context: what `edge.metadata.v1` carries, latest per sensor."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self
from uuid import UUID

from pydantic import Field, JsonValue, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from contracts._base import AssetId, Contract, UtcDatetime
from contracts.jsonld import CONTEXT_V1

MAX_SAMPLING_RATE_HZ: Final = 1_000_000.0

LanguageTag = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
Labels = dict[LanguageTag, Annotated[str, Field(min_length=1, max_length=200)]]
Text = Annotated[str, Field(min_length=1, max_length=200)]
# A term from another vocabulary: a compact IRI (`schema:manufacturer`) or an absolute IRI.
ExtensionKey = Annotated[str, Field(pattern=r"^[A-Za-z][\w.-]*:\S+$")]


class Quantity(StrEnum):
    """Physical quantities a sensor observes (`sosa:observes`)."""

    ACCELERATION = "acceleration"  # vibration
    TEMPERATURE = "temperature"
    ELECTRIC_CURRENT = "electric_current"
    PRESSURE = "pressure"
    ROTATIONAL_SPEED = "rotational_speed"
    VOLTAGE = "voltage"
    POWER = "power"
    FORCE = "force"
    DISPLACEMENT = "displacement"
    HUMIDITY = "humidity"


class SensorStatus(StrEnum):
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


class MeasurementRange(Contract):
    """The physical range the sensor can measure; values outside it are `out_of_range`."""

    min: float = Field(allow_inf_nan=False)
    max: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max <= self.min:
            raise PydanticCustomError("range_reversed", "range max must be greater than min")
        return self


class Thresholds(Contract):
    """Alert thresholds in the sensor's unit (any may be absent)."""

    warning_low: float | None = None
    warning_high: float | None = None
    critical_low: float | None = None
    critical_high: float | None = None


class SensorContext(Contract):
    """Where the sensor is and what it is for (SSN deployment)."""

    machine_id: AssetId
    machine_label: Labels = Field(default_factory=dict)
    machine_kind: Text | None = None
    location_on_machine: Text
    site: Text
    purpose: Text | None = None
    status: SensorStatus = SensorStatus.ACTIVE


class SensorDescription(Contract):
    """A sensor's metadata and context, cross-referenced with packages by `sensor_id`.

    Open to extension: any property named by a compact or absolute IRI (e.g.
    `schema:manufacturer`, with `schema` declared in the context) is kept in
    `extensions` and written back unchanged. Other unknown keys are errors.
    """

    jsonld_context: str | list[str | dict[str, str]] = Field(alias="@context", default=CONTEXT_V1)
    jsonld_type: Literal["Sensor"] = Field(alias="@type", default="Sensor")
    sensor_id: UUID
    label: Labels = Field(min_length=1)
    quantity: Quantity
    unit: str = Field(pattern=r"^[A-Za-z0-9/%.*^_-]{1,32}$", description="unit code, e.g. degC, m/s2, A, bar")
    # 1 MHz is beyond any sensor a gateway packages; an unbounded rate overflowed the gap count (streams/quality.py).
    sampling_rate_hz: float = Field(gt=0, le=MAX_SAMPLING_RATE_HZ, allow_inf_nan=False)
    range: MeasurementRange
    thresholds: Thresholds | None = None
    context: SensorContext
    updated_at: UtcDatetime
    extensions: dict[ExtensionKey, JsonValue] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_extensions(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        extra = {k: v for k, v in data.items() if isinstance(k, str) and ":" in k and not k.startswith("@")}
        if not extra:
            return data
        rest = {k: v for k, v in data.items() if k not in extra}
        return {**rest, "extensions": {**rest.get("extensions", {}), **extra}}

    @model_validator(mode="after")
    def _names_vigil_context(self) -> Self:
        context = self.jsonld_context
        first = context if isinstance(context, str) else (context[0] if context else None)  # [] names nothing
        if first != CONTEXT_V1:
            raise PydanticCustomError("unknown_context", "@context must start with {url}", {"url": CONTEXT_V1})
        return self

    @model_serializer(mode="wrap")
    def _spread_extensions(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        extensions = data.pop("extensions", None) or {}
        return {**data, **extensions}

    def to_wire(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()

    @classmethod
    def from_wire(cls, payload: bytes | str) -> SensorDescription:
        return cls.model_validate_json(payload)
