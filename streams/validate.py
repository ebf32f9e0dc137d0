"""Stage 1, validate: raw Kafka bytes -> `EdgePackage`, or a `Rejection` with a reason code.

Pure: no Kafka, no clock of its own (the caller passes the broker's append time).
The data plane does not run JSON-LD processing: it checks that `@context` names
a context Vigil ships and validates the compact form with pydantic.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
from pydantic import ValidationError

from contracts import CONTEXT_V1, KNOWN_CONTEXTS, MAX_INPUT_BYTES, EdgePackage, ReasonCode
from streams.errors import Rejection

MAX_MESSAGE_BYTES: Final = MAX_INPUT_BYTES  # edge.packages.v1 holds nothing larger

# pydantic error types that carry a reason code of their own; every other one is a schema violation.
_REASONS: Final[dict[str, ReasonCode]] = {
    "non_finite_value": ReasonCode.NON_FINITE_VALUE,
    "finite_number": ReasonCode.NON_FINITE_VALUE,
    "length_mismatch": ReasonCode.LENGTH_MISMATCH,
    "time_not_monotonic": ReasonCode.TIME_NOT_MONOTONIC,
    "too_long": ReasonCode.OVERSIZED,
}


def _field(loc: tuple[int | str, ...]) -> str | None:
    return ".".join(str(part) for part in loc) or None


def validate(
    raw: bytes | None,
    received_at: datetime,
    *,
    max_bytes: int = MAX_MESSAGE_BYTES,
    future_tolerance: timedelta = timedelta(minutes=5),
) -> EdgePackage | Rejection:
    """Decode and check one message from `edge.packages.v1`.

    `received_at` is the broker's append time; a package whose send time or
    samples lie more than `future_tolerance` (plus any NTP offset it reports)
    beyond it is `future_timestamp`.
    """
    if raw is None:
        return Rejection(ReasonCode.MALFORMED_JSON, "empty message (null value)")
    if len(raw) > max_bytes:
        return Rejection(ReasonCode.OVERSIZED, f"message is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        document: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson refuses NaN/Infinity tokens, which json.loads reads (and the contract then rejects as
        # non_finite_value); only this rare path pays for the slower parser, which also words the error.
        try:
            # Decoded first: json.loads on bytes would also take UTF-16/32, which the contract (UTF-8) does not.
            document = json.loads(raw.decode("utf-8"))
        except RecursionError:
            return Rejection(ReasonCode.MALFORMED_JSON, "JSON nested too deeply")
        except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError (a BOM too), an int of > 4300 digits
            return Rejection(ReasonCode.MALFORMED_JSON, f"not UTF-8 JSON: {exc}")
    if not isinstance(document, dict):
        return Rejection(ReasonCode.MALFORMED_JSON, f"expected a JSON object, got {type(document).__name__}")
    context = document.get("@context")
    if not isinstance(context, str) or context not in KNOWN_CONTEXTS:  # a JSON-LD array is not one we ship
        return Rejection(
            ReasonCode.UNKNOWN_CONTEXT, f"@context {context!r} is not a known Vigil context ({CONTEXT_V1})", "@context"
        )
    try:
        package = EdgePackage.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        reason = _REASONS.get(first["type"], ReasonCode.SCHEMA_VIOLATION)
        if reason is ReasonCode.SCHEMA_VIOLATION and _has_nan(document):
            reason = ReasonCode.NON_FINITE_VALUE
        return Rejection(reason, first["msg"], _field(first["loc"]))
    except (OverflowError, ValueError, RecursionError) as exc:  # raised past pydantic by a validator's arithmetic
        return Rejection(ReasonCode.SCHEMA_VIOLATION, f"value out of range: {exc}")
    return _check_future(package, received_at, future_tolerance)


def _has_nan(document: dict[str, Any]) -> bool:
    # json.loads turns NaN/Infinity tokens into floats; a schema error caused by one is reported as such.
    text = json.dumps(document)
    return "NaN" in text or "Infinity" in text


def _check_future(package: EdgePackage, received_at: datetime, tolerance: timedelta) -> EdgePackage | Rejection:
    offset = timedelta(milliseconds=package.clock_offset_ms or 0.0)
    limit = received_at + tolerance
    try:
        latest = max(package.sent_at, package.window.end) + offset
    except OverflowError:  # past year 9999 once corrected: hardly a time this platform can store
        return Rejection(ReasonCode.FUTURE_TIMESTAMP, "package times lie beyond year 9999 once corrected", "sent_at")
    if latest > limit:
        ahead = (latest - received_at).total_seconds()
        return Rejection(
            ReasonCode.FUTURE_TIMESTAMP,
            f"package times are {ahead:.1f}s ahead of the broker's clock (tolerance {tolerance.total_seconds():.0f}s)",
            "sent_at" if package.sent_at >= package.window.end else "window.end",
        )
    return package
