"""streams.validate: every kind of bad input becomes a rejection with the right reason code, never an exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import EdgePackage, ReasonCode
from streams.errors import Rejection
from streams.validate import validate

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[2] / "contracts" / "examples" / "edge_package.samples.json"
DOC = json.loads(EXAMPLE.read_text())
RECEIVED = datetime.fromisoformat(DOC["sent_at"]) + timedelta(milliseconds=30)


def _bytes(doc: dict[str, object]) -> bytes:
    return json.dumps(doc).encode()


def _reject(raw: bytes | None, **kwargs: object) -> Rejection:
    result = validate(raw, RECEIVED, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, Rejection), result
    return result


def test_valid_package_passes() -> None:
    package = validate(EXAMPLE.read_bytes(), RECEIVED)
    assert isinstance(package, EdgePackage)
    document = json.loads(EXAMPLE.read_bytes())
    assert (str(package.package_id), str(package.sensor_id)) == (document["package_id"], document["sensor_id"])
    assert (package.gateway_id, package.clock_offset_ms) == ("gw-plant-a-01", -12.5)
    assert package.samples is not None
    assert list(package.samples.t) == document["samples"]["t"]
    assert package.samples.v[:2] == [20.0, 20.164]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, ReasonCode.MALFORMED_JSON),
        (b"\xff\xfe not utf-8", ReasonCode.MALFORMED_JSON),
        (EXAMPLE.read_bytes()[:-20], ReasonCode.MALFORMED_JSON),
        (b"[1, 2, 3]", ReasonCode.MALFORMED_JSON),
        (_bytes({**DOC, "@context": "https://example.org/x.jsonld"}), ReasonCode.UNKNOWN_CONTEXT),
        (_bytes({k: v for k, v in DOC.items() if k != "@context"}), ReasonCode.UNKNOWN_CONTEXT),
        (_bytes({k: v for k, v in DOC.items() if k != "sensor_id"}), ReasonCode.SCHEMA_VIOLATION),
        (
            _bytes({**DOC, "samples": {"t": DOC["samples"]["t"], "v": DOC["samples"]["v"][:-1]}}),
            ReasonCode.LENGTH_MISMATCH,
        ),
        (
            _bytes({**DOC, "samples": {"t": DOC["samples"]["t"][::-1], "v": DOC["samples"]["v"]}}),
            ReasonCode.TIME_NOT_MONOTONIC,
        ),
        (EXAMPLE.read_bytes().replace(b"20.164", b"NaN", 1), ReasonCode.NON_FINITE_VALUE),
        (EXAMPLE.read_bytes().replace(b"20.164", b"Infinity", 1), ReasonCode.NON_FINITE_VALUE),
    ],
    ids=lambda x: x.value if isinstance(x, ReasonCode) else None,
)
def test_bad_input_gets_its_reason(raw: bytes | None, reason: ReasonCode) -> None:
    assert _reject(raw).reason is reason


@pytest.mark.parametrize(
    ("raw", "reason", "says"),
    [
        pytest.param(b'{"a":' * 3000 + b"1" + b"}" * 3000, ReasonCode.MALFORMED_JSON, "nested too deeply", id="deep"),
        pytest.param(b'{"a": 1' + b"1" * 5000 + b"}", ReasonCode.MALFORMED_JSON, "4300 digits", id="huge-int"),
        pytest.param(json.dumps(DOC).encode("utf-16"), ReasonCode.MALFORMED_JSON, "'utf-8' codec", id="utf-16"),
        pytest.param(b"\xef\xbb\xbf" + json.dumps(DOC).encode(), ReasonCode.MALFORMED_JSON, "BOM", id="bom"),
        pytest.param(
            _bytes({**DOC, "@context": [DOC["@context"]]}), ReasonCode.UNKNOWN_CONTEXT, "not a known", id="ctx-array"
        ),
        pytest.param(
            _bytes({**DOC, "sent_at": "0001-01-01T00:00:00+01:00"}),
            ReasonCode.SCHEMA_VIOLATION,
            "out of range",
            id="year-0",
        ),
        pytest.param(
            _bytes({**DOC, "sent_at": "9999-12-31T23:59:59-05:00"}),
            ReasonCode.SCHEMA_VIOLATION,
            "out of range",
            id="year-10000",
        ),
        pytest.param(
            _bytes({**DOC, "samples": {"t": [2**64 + i for i in range(10)], "v": DOC["samples"]["v"]}}),
            ReasonCode.SCHEMA_VIOLATION,
            "integer",
            id="t-past-int64",
        ),
    ],
)
def test_input_that_used_to_raise_is_rejected_with_its_reason(raw: bytes, reason: ReasonCode, says: str) -> None:
    # Each of these raised out of validate() (RecursionError, ValueError, TypeError, OverflowError), which the
    # agent turned into a processing_error dead letter; UTF-16 and the BOM were accepted.
    rejection = _reject(raw)
    assert rejection.reason is reason
    assert says in rejection.detail


def test_schema_violation_names_the_field() -> None:
    rejection = _reject(_bytes({**DOC, "gateway_id": "gw with spaces"}))
    assert (rejection.reason, rejection.field) == (ReasonCode.SCHEMA_VIOLATION, "gateway_id")


def test_oversized_message() -> None:
    assert _reject(EXAMPLE.read_bytes(), max_bytes=100).reason is ReasonCode.OVERSIZED


def test_future_timestamp_against_broker_time() -> None:
    early = RECEIVED - timedelta(hours=2)
    result = validate(EXAMPLE.read_bytes(), early, future_tolerance=timedelta(minutes=5))
    assert isinstance(result, Rejection)
    assert result.reason is ReasonCode.FUTURE_TIMESTAMP


def test_reported_ntp_offset_is_applied_before_the_future_check() -> None:
    # The gateway runs 10 min fast and says so: it is not in the future once corrected.
    ahead = timedelta(minutes=10)
    sent = datetime.fromisoformat(DOC["sent_at"]) + ahead
    window = {
        "start": (datetime.fromisoformat(DOC["window"]["start"]) + ahead).isoformat(),
        "end": (datetime.fromisoformat(DOC["window"]["end"]) + ahead).isoformat(),
    }
    t = [x + int(ahead.total_seconds() * 1e6) for x in DOC["samples"]["t"]]
    doc = {
        **DOC,
        "sent_at": sent.isoformat(),
        "window": window,
        "samples": {**DOC["samples"], "t": t},
        "clock_offset_ms": -ahead.total_seconds() * 1000,
    }
    assert isinstance(validate(_bytes(doc), RECEIVED.astimezone(UTC)), EdgePackage)
    assert _reject(_bytes({**doc, "clock_offset_ms": 0.0})).reason is ReasonCode.FUTURE_TIMESTAMP
