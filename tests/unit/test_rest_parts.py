"""The REST broker's pure parts: rate limit, token store, certificate, error paths, hashing, registry readiness,
reading packages out of a body, message sizes."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from fastapi import FastAPI

from connectors.rest import errors, sensors
from connectors.rest.bodies import edge_package, parse_json
from connectors.rest.claims import PART_SIZE, digest
from connectors.rest.errors import ApiError, loc_path
from connectors.rest.ingest import check_sizes, grant_of
from connectors.rest.kafka import MAX_MESSAGE_BYTES, Outgoing, wire_size
from connectors.rest.ratelimit import RateLimiter
from connectors.rest.settings import RestSettings
from connectors.rest.tls import ensure_self_signed
from connectors.rest.tokens import Grant, Role, TokenError, TokenStore
from contracts.topics import MAX_INPUT_BYTES
from infra.settings import InfraSettings
from tests.integration.rest_support import package

pytestmark = pytest.mark.unit


def test_rate_limiter_allows_the_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate=10.0, burst=3)
    assert [limiter.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", 0.0) == pytest.approx(0.1)
    assert limiter.take("b", 0.0) == 0.0  # buckets are per token
    assert limiter.take("a", 0.1) == 0.0  # one token refilled after 1/rate seconds
    assert limiter.take("a", 0.1) > 0.0
    assert [limiter.take("a", 100.0) for _ in range(4)].count(0.0) == 3  # refills up to the burst, not beyond


def test_tokens_are_stored_hashed_and_verified(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.sqlite")
    grant, token = store.issue("gw-a", Role.GATEWAY, ["edge.packages.v1"], ["gw-a"])
    assert token.startswith(f"vgl_{grant.token_id}_")
    assert token.split("_", 2)[2].encode() not in (tmp_path / "tokens.sqlite").read_bytes()
    again = TokenStore(tmp_path / "tokens.sqlite").verify(token)  # a second process sees it
    assert again is not None
    assert (again.principal, again.role, again.gateways) == ("gw-a", Role.GATEWAY, ("gw-a",))
    assert again.may_write("edge.packages.v1")
    assert not again.may_write("alerts.v1")
    assert again.may_send_for("gw-a")
    assert not again.may_send_for("gw-b")
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.verify("vgl_nothing_here") is None
    assert store.verify("Bearer nonsense") is None


def test_revoked_token_is_refused_and_listed(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.sqlite")
    grant, token = store.issue("ops", Role.ADMIN, ["*"], [])
    store.revoke(grant.token_id)
    assert store.verify(token) is None
    [listed] = store.list()
    assert listed.revoked_at is not None
    with pytest.raises(TokenError, match="already revoked"):
        store.revoke(grant.token_id)
    with pytest.raises(TokenError, match="no token"):
        store.revoke("deadbeef")


def test_gateway_token_needs_a_gateway(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="gateway"):
        TokenStore(tmp_path / "t.sqlite").issue("gw-a", Role.GATEWAY, ["edge.packages.v1"], [])


def test_admin_may_send_for_any_gateway(tmp_path: Path) -> None:
    grant, _ = TokenStore(tmp_path / "t.sqlite").issue("ops", Role.ADMIN, ["*"], [])
    assert grant.may_send_for("anything")
    assert grant.may_write("edge.packages.v1")


def test_self_signed_certificate_is_made_once_with_a_private_key(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls" / "rest.crt", tmp_path / "tls" / "rest.key"
    assert ensure_self_signed(cert, key)
    assert not ensure_self_signed(cert, key)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_error_location_is_a_readable_path() -> None:
    assert loc_path((2, "samples", "v", 4)) == "[2].samples.v[4]"
    assert loc_path(("window", "start")) == "window.start"
    assert loc_path(()) == ""


def test_digest_reads_in_chunks_and_rewinds() -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    stream = io.BytesIO(data)
    sha, etag, size = digest(stream)
    assert (sha, etag, size) == (hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), len(data))
    assert stream.tell() == 0


def test_digest_of_a_multipart_object_is_s3s_etag_of_its_parts() -> None:
    data = os.urandom(2 * PART_SIZE + 5)  # three parts: two whole, one of 5 bytes
    parts = [data[i : i + PART_SIZE] for i in range(0, len(data), PART_SIZE)]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert digest(io.BytesIO(data))[1] == expected
    assert digest(io.BytesIO(data[:PART_SIZE]))[1] == hashlib.md5(data[:PART_SIZE]).hexdigest()  # one part


def test_registry_lookups_answer_503_until_the_registry_has_read_the_metadata_topic() -> None:
    # The sensor routes on their own, without the broker's lifespan: nothing starts reading the topic.
    app = FastAPI()
    app.state.on_start, app.state.on_stop, app.state.settings = [], [], RestSettings()
    errors.install(app)
    sensors.install(app, InfraSettings(), app.state.settings)
    app.dependency_overrides[grant_of] = lambda: Grant("t1", "reader", Role.APP, (), (), "2026-11-30T00:00:00Z")
    sensor = "6f1c2a0e-4b7d-4e8a-9c51-2f3d8e9a0b11"

    async def get(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://broker") as client:
            return await client.get(path)

    for path in (f"/sensors/{sensor}", "/sensors?q=press", "/sparql?query=ASK%20%7B%7D"):
        response = asyncio.run(get(path))
        assert response.status_code == 503, path
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"] == "registry_catching_up"
        assert "edge.metadata.v1" in response.json()["detail"]
    app.state.registry_catch_up.ready.set()
    response = asyncio.run(get(f"/sensors/{sensor}"))
    assert response.status_code == 404  # now an honest "unknown", not a guess from half the topic
    assert response.json()["error"] == "unknown_sensor"


def _refusal(call: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (json.dumps({"a": 1}).encode("utf-16"), "is UTF-16"),
        (json.dumps({"a": 1}).encode("utf-16-be"), "NUL character at offset 0"),  # no byte order mark
        (json.dumps({"a": 1}).encode("utf-32"), "is UTF-32"),
        (b"\xef\xbb\xbf" + json.dumps({"a": 1}).encode(), "byte order mark"),
        (b'{"a": "\xe9t\xe9"}', "not UTF-8: byte 0xe9 at offset 7"),
        (b"[" * 100_000 + b"]" * 100_000, "too deeply"),
        (b'{"a": ' + b"7" * 5000 + b"}", "more than 4300 digits"),
        (b"{not json", "is not JSON: Expecting property name"),
    ],
)
def test_a_body_must_be_utf8_json_without_a_bom(raw: bytes, words: str) -> None:
    refusal = _refusal(parse_json, raw)
    assert (refusal.status, refusal.code, refusal.field) == (422, "malformed_json", None)
    assert words in refusal.detail
    # json.loads(bytes) alone would have read the first four (it guesses UTF-16/32 and skips a BOM)
    assert parse_json(json.dumps({"a": "\u00e9"}).encode()) == {"a": "\u00e9"}


def test_a_form_field_is_checked_for_a_bom_too() -> None:
    refusal = _refusal(parse_json, "\ufeff{}", "package")
    assert (refusal.code, refusal.field) == ("malformed_json", "package")
    assert refusal.detail.startswith("package starts with a byte order mark")
    assert parse_json('{"a": [1]}', "package") == {"a": [1]}


def test_a_package_must_name_a_context_vigil_ships() -> None:
    doc = package("gw-a")
    assert edge_package(doc).package_id is not None
    missing = {k: v for k, v in doc.items() if k != "@context"}
    refusal = _refusal(edge_package, missing)  # EdgePackage alone fills in a default: the stream would refuse it
    assert (refusal.status, refusal.code, refusal.field) == (422, "unknown_context", "@context")
    assert "missing" in refusal.detail
    refusal = _refusal(edge_package, {**doc, "@context": "https://example.org/other.jsonld"}, 3)
    assert (refusal.code, refusal.field) == ("unknown_context", "[3].@context")
    assert "example.org/other" in refusal.detail
    refusal = _refusal(edge_package, {**doc, "@context": [doc["@context"]]})
    assert refusal.code == "unknown_context"
    refusal = _refusal(edge_package, [doc], 1)
    assert (refusal.code, refusal.field, refusal.detail) == (
        "malformed_json",
        "[1]",
        "[1]: expected a JSON object, got array",
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sent_at": "0001-01-01T00:00:00+01:00"}, "sent_at"),
        ({"sent_at": "9999-12-31T23:59:59-05:00"}, "sent_at"),
        ({"window": {"start": "9999-12-31T23:59:59-05:00", "end": "9999-12-31T23:59:59-05:00"}}, "window.start"),
        ({"samples": {"t": [2**63, 2**63 + 1], "v": [1.0, 2.0]}}, "samples.t[0]"),
        ({"samples": {"t": [-(2**63) - 1, 0], "v": [1.0, 2.0]}}, "samples.t[0]"),
        ({"samples": {"t": [0, 2**64], "v": [1.0, 2.0]}}, "samples.t[1]"),
    ],
)
def test_a_value_the_contract_cannot_hold_is_out_of_range_not_a_crash(change: dict[str, Any], field: str) -> None:
    doc = {**package("gw-a"), **change}
    refusal = _refusal(edge_package, doc)  # pydantic let OverflowError escape for these
    assert (refusal.status, refusal.code, refusal.field) == (422, "out_of_range", field)
    refusal = _refusal(edge_package, doc, 2)
    assert refusal.field == f"[2].{field}"


def test_every_message_is_size_checked_before_any_is_produced() -> None:
    key, headers = b"6f1c2a0e-4b7d-4e8a-9c51-2f3d8e9a0b11", [("vigil-principal", b"gw-a"), ("x" * 70, b"y" * 200)]
    # librdkafka's count: 36 bytes of record overhead, key, value, and each header's varint lengths and bytes
    # (a zigzag varint: 1 byte up to 63, 2 bytes up to 8191).
    assert wire_size(Outgoing("t", key, b"v" * 10, headers)) == 36 + 36 + 10 + (1 + 15 + 1 + 4) + (2 + 70 + 2 + 200)
    empty = wire_size(Outgoing("t", key, b"", headers))

    def message(size: int) -> Outgoing:
        return Outgoing("t", key, b"v" * (size - empty), headers)

    check_sizes([message(MAX_MESSAGE_BYTES)] * 2, "package", batch=True)  # at the limit: fine
    refusal = _refusal(
        check_sizes, [message(100), message(MAX_MESSAGE_BYTES + 1), message(MAX_MESSAGE_BYTES + 9)], "package", True
    )
    assert (refusal.status, refusal.code, refusal.field) == (413, "oversized", "[1]")
    assert f"package [1] is {MAX_MESSAGE_BYTES + 1:,} bytes" in refusal.detail
    assert f"the limit is {MAX_MESSAGE_BYTES:,}" in refusal.detail
    assert "2 of the request's messages" in refusal.detail
    refusal = _refusal(check_sizes, [message(MAX_MESSAGE_BYTES + 1)])
    assert (refusal.field, refusal.detail.split(" is ")[0]) == (None, "the package")


def test_a_message_the_broker_produces_fits_the_ingest_topics() -> None:
    # A message librdkafka takes (MAX_MESSAGE_BYTES) must also fit the topic's max.message.bytes.
    assert MAX_MESSAGE_BYTES < MAX_INPUT_BYTES
