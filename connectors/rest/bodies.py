"""Reading packages out of a request body: each way a body can be wrong is a precise 422, never a 500.

Pure (no request, no Kafka): the ingest routes call these, and the unit tests
call them directly. The order of the checks is the stream stage's
(streams/validate.py): strict UTF-8 JSON, a JSON object, a known `@context`,
then the contract, so the broker refuses with the reason the stream would
have dead-lettered the package for, instead of answering 202 for it.
"""

from __future__ import annotations

import codecs
import json
import sys
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from connectors.rest.errors import ApiError, loc_path
from contracts import CONTEXT_V1, KNOWN_CONTEXTS, EdgePackage
from contracts._base import UtcDatetime

# Byte order marks of the encodings json.loads(bytes) would silently accept; the contract is UTF-8 only.
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "is UTF-32 (it starts with its byte order mark); send UTF-8 JSON"),  # before UTF-16 LE,
    (codecs.BOM_UTF32_BE, "is UTF-32 (it starts with its byte order mark); send UTF-8 JSON"),  # a prefix of it
    (codecs.BOM_UTF8, "starts with a byte order mark; send UTF-8 JSON without one"),
    (codecs.BOM_UTF16_LE, "is UTF-16 (it starts with its byte order mark); send UTF-8 JSON"),
    (codecs.BOM_UTF16_BE, "is UTF-16 (it starts with its byte order mark); send UTF-8 JSON"),
)
_INT64: Final = (-(2**63), 2**63 - 1)  # samples.t is int64 microseconds downstream (numpy, Avro, Delta)
_UTC: Final = TypeAdapter(UtcDatetime)
_JSON_TYPES: Final = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def parse_json(raw: bytes | str, field: str | None = None) -> Any:
    """The JSON value of a body (bytes) or of a form field (str, already decoded by the multipart parser).

    Raises ApiError 422 `malformed_json`: not UTF-8 (UTF-16/32, a byte order
    mark, invalid bytes), not JSON, nested too deeply or with an integer too
    long for Python to read. `field` names the form field in the message.
    """
    what = field or "the body"

    def refuse(why: str) -> ApiError:
        return ApiError(422, "malformed_json", f"{what} {why}", field=field)

    if isinstance(raw, bytes):
        for bom, why in _BOMS:
            if raw.startswith(bom):
                raise refuse(why)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise refuse(f"is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}") from exc
    else:
        text = raw
        if text.startswith("\ufeff"):
            raise refuse("starts with a byte order mark; send UTF-8 JSON without one")
    if "\x00" in text:  # never valid in JSON text; what UTF-16/32 without a byte order mark looks like in UTF-8
        raise refuse(f"holds a NUL character at offset {text.index(chr(0))} (UTF-16 or UTF-32?); send UTF-8 JSON")
    try:
        return json.loads(text)  # a str: json.loads on bytes would guess UTF-16/32
    except RecursionError as exc:  # the C scanner bounds its recursion: this unwinds cleanly
        raise refuse("nests arrays and objects too deeply to read") from exc
    except ValueError as exc:  # JSONDecodeError, or ValueError for an integer past sys.get_int_max_str_digits()
        if "integer string conversion" in str(exc):
            raise refuse(f"holds a number of more than {sys.get_int_max_str_digits()} digits") from exc
        raise refuse(f"is not JSON: {exc}") from exc


def edge_package(item: Any, index: int | None = None) -> EdgePackage:
    """One package of a request, validated; `index` is its place in a batch (None: the body is one package).

    Raises ApiError 422: `malformed_json` (not an object), `unknown_context`
    (missing or not a context Vigil ships: EdgePackage would fill in a default
    and the stream would dead-letter the package), the contract's error type,
    or `out_of_range` (a time or sample time the contract's arithmetic
    cannot hold, which pydantic lets escape as OverflowError).
    """
    prefix = f"[{index}]" if index is not None else ""

    def where(path: str) -> str | None:  # `[2].sent_at` in a batch, `sent_at` alone; None: the package itself
        return ".".join(part for part in (prefix, path) if part) or None

    if not isinstance(item, dict):
        kind = _JSON_TYPES.get(type(item), "null")
        detail = f"{prefix or 'package'}: expected a JSON object, got {kind}"
        raise ApiError(422, "malformed_json", detail, field=where(""))
    context = item.get("@context")
    if not isinstance(context, str) or context not in KNOWN_CONTEXTS:
        said = "missing" if "@context" not in item else f"{context!r} is not a context Vigil ships"
        raise ApiError(
            422, "unknown_context", f"{where('@context')}: {said}; use {CONTEXT_V1!r}", field=where("@context")
        )
    try:
        return EdgePackage.model_validate(item)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = loc_path(((index,) if index is not None else ()) + tuple(first["loc"])) or None
        raise ApiError(422, first["type"], f"{field or 'package'}: {first['msg']}", field=field) from exc
    except (OverflowError, ValueError) as exc:  # raised past pydantic by a validator's arithmetic
        path, why = out_of_range(item)
        field = where(path)
        raise ApiError(422, "out_of_range", f"{field or 'package'}: {why or exc}", field=field) from exc


def out_of_range(item: dict[str, Any]) -> tuple[str, str]:
    """The path of the first value the contract's arithmetic overflows on, and why; ("", "") if none found."""
    for path in (("sent_at",), ("window", "start"), ("window", "end")):
        value: Any = item
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        try:
            _UTC.validate_python(value)
        except ValidationError:
            continue  # not a time at all: the contract words that one
        except (OverflowError, ValueError):
            return ".".join(path), f"{value!r} lies outside the years 1 to 9999 once converted to UTC"
    samples = item.get("samples")
    times = samples.get("t") if isinstance(samples, dict) else None
    for i, t in enumerate(times if isinstance(times, list) else []):
        if isinstance(t, int) and not _INT64[0] <= t <= _INT64[1]:
            # The value itself is left out: it may have thousands of digits.
            return f"samples.t[{i}]", "a sample time must fit a signed 64-bit integer of microseconds"
    return "", ""
