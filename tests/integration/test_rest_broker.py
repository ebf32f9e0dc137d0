"""The REST broker over real HTTPS against the real Kafka and MinIO that `make up` started."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

import httpx
import pytest
from minio import Minio

from connectors.rest.claims import ClaimStore
from connectors.rest.kafka import MAX_MESSAGE_BYTES, AsyncProducer, Outgoing, ProduceError
from contracts import AuditEvent, AuditOutcome, EdgePackage
from contracts import avro as avro_codec
from infra.rest_broker import Broker
from infra.settings import InfraSettings
from tests.integration.rest_support import ends, package, read_since
from tests.kafka_keyed import refusing_writes

pytestmark = pytest.mark.integration
PACKAGES = "edge.packages.v1"


def _minio(settings: InfraSettings) -> Minio:
    return Minio(
        settings.minio_endpoint,
        access_key=settings.minio_root_user,
        secret_key=settings.minio_root_password.get_secret_value(),
        secure=False,
    )


def _error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, object] = response.json()
    assert body["error"] == code, body
    assert "Traceback" not in response.text
    return body


def test_a_package_round_trips_with_provenance(
    platform: InfraSettings, broker: Broker, gateway: tuple[str, str]
) -> None:
    gateway_id, token = gateway
    doc = package(gateway_id)
    raw = json.dumps(doc).encode()
    with broker.client(token) as client:
        response = client.post(f"/topic/{PACKAGES}", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 202, response.text
    [placed] = response.json()["packages"]
    assert placed["package_id"] == doc["package_id"]
    since = {placed["partition"]: placed["offset"]}
    [message] = [m for m in read_since(platform, PACKAGES, since) if m.offset() == placed["offset"]]
    assert message.value() == raw  # byte for byte as sent
    assert message.key() == doc["sensor_id"].encode()
    headers = dict(message.headers() or [])
    assert headers["vigil-principal"] == gateway_id.encode()
    assert headers["vigil-client"] == b"127.0.0.1"
    assert headers["vigil-request-id"] == response.headers["x-request-id"].encode()
    received_at = headers["vigil-received-at"]
    assert isinstance(received_at, bytes)
    received = datetime.fromisoformat(received_at.decode())
    assert abs((datetime.now(UTC) - received).total_seconds()) < 60


def test_a_batch_is_written_whole(platform: InfraSettings, broker: Broker, gateway: tuple[str, str]) -> None:
    gateway_id, token = gateway
    docs = [package(gateway_id) for _ in range(3)]
    with broker.client(token) as client:
        response = client.post(f"/topic/{PACKAGES}", json=docs)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3
    offsets = {(p["partition"], p["offset"]): p["package_id"] for p in response.json()["packages"]}
    since = {p: min(o for (pp, o) in offsets if pp == p) for p, _ in offsets}
    written = {
        (m.partition(), m.offset()): EdgePackage.from_wire(m.value() or b"").package_id
        for m in read_since(platform, PACKAGES, since)
        if (m.partition(), m.offset()) in offsets
    }
    assert {k: str(v) for k, v in written.items()} == offsets


def test_a_package_of_another_gateway_is_refused_and_nothing_is_written(
    platform: InfraSettings, broker: Broker, gateway: tuple[str, str]
) -> None:
    _, token = gateway
    own, other = package(gateway[0]), package("gw-someone-else")
    before = ends(platform, PACKAGES)
    with broker.client(token) as client:
        response = client.post(f"/topic/{PACKAGES}", json=[own, other])
    body = _error(response, 403, "gateway_forbidden")
    assert "gw-someone-else" in str(body["detail"])
    written = read_since(platform, PACKAGES, before)
    ids = {own["package_id"].encode(), other["package_id"].encode()}
    assert not [m for m in written if any(i in (m.value() or b"") for i in ids)]


def test_authentication_failures(broker: Broker, gateway: tuple[str, str]) -> None:
    doc = package(gateway[0])
    with broker.client() as anonymous:
        _error(anonymous.post(f"/topic/{PACKAGES}", json=doc), 401, "unauthenticated")
    with broker.client("vgl_0000_not-a-token") as forged:
        _error(forged.post(f"/topic/{PACKAGES}", json=doc), 401, "invalid_token")
    temporary = broker.token(f"gw-temp-{uuid.uuid4().hex[:4]}", "--role", "gateway", "--gateway", gateway[0])
    with broker.client(temporary) as client:
        assert client.post(f"/topic/{PACKAGES}", json=package(gateway[0])).status_code == 202
        token_id = temporary.split("_")[1]
        assert broker.cli("token", "revoke", token_id).returncode == 0
        listed = [json.loads(line) for line in broker.cli("token", "list", "--json").stdout.splitlines()]
        [revoked] = [t for t in listed if t["token_id"] == token_id]
        assert revoked["revoked_at"] is not None
        _error(client.post(f"/topic/{PACKAGES}", json=package(gateway[0])), 401, "invalid_token")


def test_topic_rules(broker: Broker, gateway: tuple[str, str]) -> None:
    reader = broker.token(f"app-{uuid.uuid4().hex[:4]}", "--role", "app", "--topic", "edge.metadata.v1")
    with broker.client(gateway[1]) as client:
        _error(client.post("/topic/no.such.topic", json=package(gateway[0])), 404, "unknown_topic")
        _error(client.post("/topic/alerts.v1", json=package(gateway[0])), 404, "unknown_topic")
        listed = client.get("/topics").json()
        assert [t["name"] for t in listed["topics"]] == [PACKAGES]
        assert listed["principal"] == gateway[0]
    with broker.client(reader) as client:
        _error(client.post(f"/topic/{PACKAGES}", json=package(gateway[0])), 403, "topic_forbidden")
        assert client.get("/topics").json()["topics"] == []


def test_bad_bodies_get_422_naming_the_field(broker: Broker, gateway: tuple[str, str]) -> None:
    with broker.client(gateway[1]) as client:
        _error(
            client.post(f"/topic/{PACKAGES}", content=b"{not json", headers={"content-type": "application/json"}),
            422,
            "malformed_json",
        )
        bad = package(gateway[0])
        bad["samples"]["v"] = bad["samples"]["v"][:-1]
        body = _error(client.post(f"/topic/{PACKAGES}", json=[package(gateway[0]), bad]), 422, "length_mismatch")
        assert str(body["field"]).startswith("[1]")
        naive = package(gateway[0], sent_at="2026-11-23T08:00:01")
        body = _error(client.post(f"/topic/{PACKAGES}", json=naive), 422, "naive_datetime")
        assert body["field"] == "sent_at"
        nan = json.dumps(package(gateway[0])).replace('"v": [0.0', '"v": [NaN', 1)
        body = _error(client.post(f"/topic/{PACKAGES}", content=nan.encode()), 422, "non_finite_value")
        assert "samples" in str(body["field"])
        _error(client.post(f"/topic/{PACKAGES}", json=[]), 422, "empty_batch")


def test_bodies_the_broker_cannot_read_get_4xx_not_500_and_nothing_is_written(
    platform: InfraSettings, broker: Broker, gateway: tuple[str, str]
) -> None:
    gateway_id, token = gateway
    sent: list[dict[str, Any]] = []

    def fresh(**changes: Any) -> dict[str, Any]:
        doc = package(gateway_id, **changes)
        sent.append(doc)
        return doc

    text = json.dumps(fresh())
    no_context = {k: v for k, v in fresh().items() if k != "@context"}
    huge_time = fresh()
    huge_time["samples"] = {"t": [2**63 + 1, 2**63 + 2], "v": [1.0, 2.0]}
    cases: list[tuple[bytes, int, str, str | None, str]] = [
        (b"[" * 5000 + b"]" * 5000, 422, "malformed_json", None, "too deeply"),
        (text[:-1].encode() + b', "x": ' + b"1" * 5000 + b"}", 422, "malformed_json", None, "4300 digits"),
        (text.encode("utf-16"), 422, "malformed_json", None, "UTF-16"),  # json.loads(bytes) would read these
        (text.encode("utf-16-le"), 422, "malformed_json", None, "NUL"),
        (text.encode("utf-32"), 422, "malformed_json", None, "UTF-32"),
        (b"\xef\xbb\xbf" + text.encode(), 422, "malformed_json", None, "byte order mark"),
        # EdgePackage fills in a missing @context; the stream stage dead-letters such a package as unknown_context.
        (json.dumps(no_context).encode(), 422, "unknown_context", "@context", "missing"),
        (json.dumps([fresh(), no_context]).encode(), 422, "unknown_context", "[1].@context", "missing"),
        (json.dumps(fresh(sent_at="0001-01-01T00:00:00+01:00")).encode(), 422, "out_of_range", "sent_at", "year"),
        (json.dumps(fresh(sent_at="9999-12-31T23:59:59-05:00")).encode(), 422, "out_of_range", "sent_at", "year"),
        (json.dumps([fresh(), huge_time]).encode(), 422, "out_of_range", "[1].samples.t[0]", "64-bit"),
    ]
    before = ends(platform, PACKAGES)
    with broker.client(token) as client:
        for raw, status, code, field, words in cases:
            body = _error(
                client.post(f"/topic/{PACKAGES}", content=raw, headers={"content-type": "application/json"}),
                status,
                code,
            )
            assert (body.get("field"), words in str(body["detail"])) == (field, True), (raw[:60], body)
        attachment = {k: v for k, v in fresh().items() if k != "samples"}
        for form, code, words in [
            (json.dumps({k: v for k, v in attachment.items() if k != "@context"}), "unknown_context", "missing"),
            ("\ufeff" + json.dumps(attachment), "malformed_json", "byte order mark"),
            ("[" * 5000 + "]" * 5000, "malformed_json", "too deeply"),
        ]:
            body = _error(
                client.post(f"/topic/{PACKAGES}", data={"package": form}, files={"file": ("a.bin", b"x", "a/b")}),
                422,
                code,
            )
            assert words in str(body["detail"]), body
    ids = [str(doc["package_id"]).encode() for doc in sent]
    assert not [m for m in read_since(platform, PACKAGES, before) if any(i in (m.value() or b"") for i in ids)]


def test_a_package_over_the_message_limit_gets_413_and_nothing_of_its_batch_is_written(
    platform: InfraSettings, broker: Broker, gateway: tuple[str, str]
) -> None:
    gateway_id, token = gateway
    small, big = package(gateway_id), package(gateway_id, samples=50_000)  # ~1.2 MB: under the 2 MiB body cap
    before = ends(platform, PACKAGES)
    with broker.client(token) as client:
        alone = _error(client.post(f"/topic/{PACKAGES}", json=big), 413, "oversized")
        batch = _error(client.post(f"/topic/{PACKAGES}", json=[small, big]), 413, "oversized")
    assert "field" not in alone
    assert batch["field"] == "[1]"
    for body in (alone, batch):
        assert f"the limit is {MAX_MESSAGE_BYTES:,}" in str(body["detail"]), body
        assert "nothing was written" in str(body["detail"])
    ids = (small["package_id"].encode(), big["package_id"].encode())
    assert not [m for m in read_since(platform, PACKAGES, before) if any(i in (m.value() or b"") for i in ids)]


def test_the_message_limit_is_librdkafkas_to_the_byte(broker: Broker, gateway: tuple[str, str]) -> None:
    gateway_id, token = gateway
    # What the broker puts around a single package's bytes, counted as librdkafka counts a record: 36 bytes of
    # overhead, the key (a sensor UUID) and each provenance header with one-byte varint lengths.
    provenance = {
        "vigil-principal": gateway_id,
        "vigil-token-id": token.split("_")[1],
        "vigil-client": "127.0.0.1",
        "vigil-received-at": "2026-11-30T08:00:00.123456+00:00",
        "vigil-request-id": "0123456789abcdef",
    }
    around = 36 + 36 + sum(1 + len(name) + 1 + len(value) for name, value in provenance.items())

    def padded(over: int) -> bytes:
        """A valid package sent as itself plus trailing JSON whitespace: a message of the limit plus `over`."""
        raw = json.dumps(package(gateway_id)).encode()
        return raw + b" " * (MAX_MESSAGE_BYTES + over - around - len(raw))

    with broker.client(token) as client:
        at_limit = client.post(f"/topic/{PACKAGES}", content=padded(0), headers={"content-type": "application/json"})
        assert at_limit.status_code == 202, at_limit.text  # librdkafka takes it: the check is not stricter
        over = client.post(f"/topic/{PACKAGES}", content=padded(1), headers={"content-type": "application/json"})
    body = _error(over, 413, "oversized")  # and not looser: librdkafka would have refused it (a 500 before)
    assert f"is {MAX_MESSAGE_BYTES + 1:,} bytes" in str(body["detail"])


def test_a_message_librdkafka_refuses_is_a_produce_error_saying_what_was_queued(
    platform: InfraSettings, gateway: tuple[str, str]
) -> None:
    doc = package(gateway[0])
    ok = Outgoing(PACKAGES, doc["sensor_id"].encode(), json.dumps(doc).encode(), [])
    huge = Outgoing(PACKAGES, doc["sensor_id"].encode(), b" " * MAX_MESSAGE_BYTES, [])

    async def scenario() -> tuple[ProduceError, ProduceError]:
        producer = AsyncProducer(platform.kafka_bootstrap)
        try:
            with pytest.raises(ProduceError) as alone:
                await producer.send([huge], 10)
            with pytest.raises(ProduceError) as second:
                await producer.send([ok, huge], 10)
        finally:  # flushed while the loop runs: the queued message's acknowledgement has a loop to go to
            assert await asyncio.to_thread(producer.close) == 0
        return alone.value, second.value

    alone, second = asyncio.run(scenario())
    assert (alone.code, alone.queued) == ("MSG_SIZE_TOO_LARGE", 0)  # a KafkaException escaped before
    assert (second.code, second.queued) == ("MSG_SIZE_TOO_LARGE", 1)
    assert "message 1" in str(second)


def test_limits(broker: Broker, gateway: tuple[str, str]) -> None:
    with broker.client(gateway[1]) as client:
        _error(client.post(f"/topic/{PACKAGES}", content=b"x" * (3 * 1024 * 1024)), 413, "too_large")
        _error(client.post(f"/topic/{PACKAGES}", json=[package(gateway[0], samples=2)] * 51), 413, "batch_too_large")

        def slow() -> Iterator[bytes]:
            yield b'{"package_id": '
            time.sleep(4.5)  # longer than VIGIL_REST_REQUEST_TIMEOUT_S=3
            yield b'"x"}'

        _error(client.post(f"/topic/{PACKAGES}", content=slow()), 504, "timeout")
    limited = broker.token(f"gw-rate-{uuid.uuid4().hex[:4]}", "--role", "gateway")
    with broker.client(limited) as client:
        statuses = [client.get("/topics").status_code for _ in range(40)]  # burst 20, 20/s
    assert statuses[:20] == [200] * 20
    assert 429 in statuses
    with broker.client(limited) as client:
        time.sleep(1.5)
        refused = [r for r in (client.get("/topics") for _ in range(25)) if r.status_code == 429]
    assert refused
    assert int(refused[0].headers["retry-after"]) >= 1


def _raw_exchange(broker: Broker, *parts: bytes) -> tuple[bytes, dict[str, object]]:
    """Send `parts` over one TLS connection (a pause between them), read until the broker closes it."""
    url = httpx.URL(broker.url)
    raw = socket.create_connection((url.host, url.port or 443), timeout=10)
    with broker.tls().wrap_socket(raw, server_hostname=url.host) as tls:
        for part in parts:
            tls.sendall(part)
            time.sleep(0.3)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    body: dict[str, object] = json.loads(payload)
    return head, body


def test_a_request_head_over_the_limit_gets_431_in_json(broker: Broker, gateway: tuple[str, str]) -> None:
    with broker.client(gateway[1]) as client:  # the whole head at once: refused by the request envelope
        body = _error(client.get("/topics", headers={"x-long": "x" * 70_000}), 431, "head_too_large")
    assert "limit of 65536 bytes" in str(body["detail"])
    # A head still arriving when it passes the limit: refused by the HTTP layer (connectors/rest/_http11.py).
    start = b"GET /topics HTTP/1.1\r\nHost: x\r\nx-long: " + b"x" * 40_000
    head, body = _raw_exchange(broker, start, b"x" * 40_000)
    assert head.startswith(b"HTTP/1.1 431 "), head
    assert body["error"] == "head_too_large"
    assert "limit of 65536 bytes" in str(body["detail"])


def test_a_request_that_is_not_http_gets_400_in_json(broker: Broker) -> None:
    head, body = _raw_exchange(broker, b"GET /topics HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert body["error"] == "malformed_http"


def test_an_attachment_travels_by_claim_check(
    platform: InfraSettings, broker: Broker, gateway: tuple[str, str]
) -> None:
    gateway_id, token = gateway
    data = os.urandom(1024 * 1024 + 3)
    doc = package(gateway_id)
    del doc["samples"]
    app = broker.token(f"app-{uuid.uuid4().hex[:4]}", "--role", "app")
    with broker.client(token) as client:
        wrong = client.post(
            f"/topic/{PACKAGES}",
            data={"package": json.dumps(doc), "sha256": "0" * 64},
            files={"file": ("vib.wav", data, "audio/wav")},
        )
        _error(wrong, 422, "hash_mismatch")
        response = client.post(
            f"/topic/{PACKAGES}",
            data={"package": json.dumps(doc), "sha256": hashlib.sha256(data).hexdigest()},
            files={"file": ("vib.wav", data, "audio/wav")},
        )
    assert response.status_code == 202, response.text
    claim = response.json()["claim"]
    [placed] = response.json()["packages"]
    [message] = [
        m
        for m in read_since(platform, PACKAGES, {placed["partition"]: placed["offset"]})
        if m.offset() == placed["offset"]
    ]
    sent = EdgePackage.from_wire(message.value() or b"")
    assert sent.claim is not None
    assert (sent.claim.uri, sent.claim.sha256, sent.claim.bytes) == (
        claim["uri"],
        hashlib.sha256(data).hexdigest(),
        len(data),
    )
    with broker.client(broker.token(f"gw-other-{uuid.uuid4().hex[:4]}", "--role", "gateway")) as other:
        _error(other.get(f"/claims/{claim['claim_id']}"), 403, "claim_forbidden")
    with broker.client(app) as client:
        redeemed = client.get(f"/claims/{claim['claim_id']}")
        assert redeemed.status_code == 200
        assert redeemed.content == data
        assert redeemed.headers["x-vigil-sha256"] == hashlib.sha256(data).hexdigest()
        deadline = time.monotonic() + 10
        while client.get(f"/claims/{claim['claim_id']}").status_code != 404:  # deleted after the claim
            assert time.monotonic() < deadline, "the claimed object was not deleted"
            time.sleep(0.2)


def test_expired_claims_are_refused_and_swept(platform: InfraSettings, broker: Broker) -> None:
    store = ClaimStore(_minio(platform), "raw-blobs")
    common = {
        "media_type": "text/plain",
        "owner": "test",
        "filename": "a.txt",
        "delete_after_claim": False,
        "expected_sha256": None,
    }
    expired = store.put(BytesIO(b"old"), ttl=timedelta(seconds=-1), **common)  # type: ignore[arg-type]
    kept = store.put(BytesIO(b"new"), ttl=timedelta(days=1), **common)  # type: ignore[arg-type]
    app = broker.token(f"app-{uuid.uuid4().hex[:4]}", "--role", "app")
    with broker.client(app) as client:
        _error(client.get(f"/claims/{expired.claim_id}"), 410, "claim_expired")
        _error(client.get(f"/claims/{expired.claim_id}"), 404, "unknown_claim")  # deleted on the refusal
        swept = ClaimStore(_minio(platform), "raw-blobs").sweep(now=datetime.now(UTC) + timedelta(days=2))
        assert kept.claim_id in swept
        _error(client.get(f"/claims/{kept.claim_id}"), 404, "unknown_claim")


def test_every_request_is_audited_without_its_data(
    platform: InfraSettings, broker: Broker, gateway: tuple[str, str]
) -> None:
    since = ends(platform, "audit.v1")
    doc = package(gateway[0])
    with broker.client(gateway[1]) as client:
        ok = client.post(f"/topic/{PACKAGES}", json=doc)
        refused = client.post("/topic/no.such.topic", json=doc)
    wanted = {
        ok.headers["x-request-id"]: (202, AuditOutcome.ACCEPTED),
        refused.headers["x-request-id"]: (404, AuditOutcome.REJECTED),
    }
    deadline = time.monotonic() + 20
    found: dict[str, AuditEvent] = {}
    while len(found) < 2 and time.monotonic() < deadline:
        for m in read_since(platform, "audit.v1", since):
            assert doc["package_id"].encode() not in (m.value() or b"")
            event = avro_codec.decode(AuditEvent, m.value() or b"")
            if event.request_id in wanted:
                found[event.request_id] = event
        time.sleep(0.5)
    assert {k: (e.status, e.outcome) for k, e in found.items()} == wanted
    event = found[ok.headers["x-request-id"]]
    assert (event.principal, event.topic, event.route, event.messages) == (gateway[0], PACKAGES, "/topic/{topic}", 1)
    assert event.request_bytes > 0
    assert found[refused.headers["x-request-id"]].reason == "unknown_topic"


def test_metrics_count_requests(broker: Broker, gateway: tuple[str, str]) -> None:
    with broker.client(gateway[1]) as client:
        client.get("/topics")
        text = client.get("/metrics").text
    assert 'vigil_rest_requests_total{method="GET",route="/topics",status="200"}' in text
    assert "vigil_rest_produce_seconds_bucket" in text


def test_an_audit_event_kafka_refuses_is_counted_and_the_request_still_answered(
    platform: InfraSettings, broker: Broker, gateway: tuple[str, str]
) -> None:
    def lost(text: str) -> float:
        line = next((x for x in text.splitlines() if x.startswith('vigil_rest_audit_lost_total{topic="audit.v1"}')), "")
        return float(line.split()[-1]) if line else 0.0

    with broker.client(gateway[1]) as client:
        before = lost(client.get("/metrics").text)
        with refusing_writes(platform.kafka_bootstrap, "audit.v1"):
            assert client.get("/topics").status_code == 200  # the audit event is refused; the request is not
            deadline = time.monotonic() + 30
            while lost(client.get("/metrics").text) == before and time.monotonic() < deadline:
                time.sleep(0.2)
        assert lost(client.get("/metrics").text) >= before + 1
