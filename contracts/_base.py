"""Shared building blocks of the contract models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError


class Contract(BaseModel):
    """Base of every wire and table model: immutable, and unknown fields are errors."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, ser_json_bytes="base64", val_json_bytes="base64"
    )


def _aware_utc(value: datetime) -> datetime:
    # A naive time is ambiguous across gateways in different zones: reject it instead of guessing.
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError("naive_datetime", "timestamp must carry a UTC offset (e.g. 'Z' or '+01:00')")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_aware_utc)]
"""A timezone-aware timestamp, normalised to UTC."""

GatewayId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="gateway name")]
AssetId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="machine (asset) id")]
