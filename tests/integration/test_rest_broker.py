"""The REST broker over real HTTPS against the real Kafka and MinIO that `make up` started."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO

import httpx
import pytest
from minio import Minio

from connectors.rest.claims import ClaimStore
from contracts import AuditEvent, AuditOutcome, EdgePackage
from contracts import avro as avro_codec
from infra.rest_broker import Broker
from infra.settings import InfraSettings
from tests.integration.rest_support import PACKAGES, ends, error_body, package, read_since
from tests.kafka_keyed import refusing_writes

pytestmark = pytest.mark.integration


def _minio(settings: InfraSettings) -> Minio:
    return Minio(
        settings.minio_endpoint,
        access_key=settings.minio_root_user,
        secret_key=settings.minio_root_password.get_secret_value(),
        secure=False,
    )


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
    body = error_body(response, 403, "gateway_forbidden")
    assert "gw-someone-else" in str(body["detail"])
    written = read_since(platform, PACKAGES, before)
    ids = {own["package_id"].encode(), other["package_id"].encode()}
    assert not [m for m in written if any(i in (m.value() or b"") for i in ids)]


def test_authentication_failures(broker: Broker, gateway: tuple[str, str]) -> None:
    doc = package(gateway[0])
    with broker.client() as anonymous:
        error_body(anonymous.post(f"/topic/{PACKAGES}", json=doc), 401, "unauthenticated")
    with broker.client("vgl_0000_not-a-token") as forged:
        error_body(forged.post(f"/topic/{PACKAGES}", json=doc), 401, "invalid_token")
    temporary = broker.token(f"gw-temp-{uuid.uuid4().hex[:4]}", "--role", "gateway", "--gateway", gateway[0])
    with broker.client(temporary) as client:
        assert client.post(f"/topic/{PACKAGES}", json=package(gateway[0])).status_code == 202
        token_id = temporary.split("_")[1]
        assert broker.cli("token", "revoke", token_id).returncode == 0
        listed = [json.loads(line) for line in broker.cli("token", "list", "--json").stdout.splitlines()]
        [revoked] = [t for t in listed if t["token_id"] == token_id]
        assert revoked["revoked_at"] is not None
        error_body(client.post(f"/topic/{PACKAGES}", json=package(gateway[0])), 401, "invalid_token")


def test_topic_rules(broker: Broker, gateway: tuple[str, str]) -> None:
    reader = broker.token(f"app-{uuid.uuid4().hex[:4]}", "--role", "app", "--topic", "edge.metadata.v1")
    with broker.client(gateway[1]) as client:
        error_body(client.post("/topic/no.such.topic", json=package(gateway[0])), 404, "unknown_topic")
        error_body(client.post("/topic/alerts.v1", json=package(gateway[0])), 404, "unknown_topic")
        listed = client.get("/topics").json()
        assert [t["name"] for t in listed["topics"]] == [PACKAGES]
        assert listed["principal"] == gateway[0]
    with broker.client(reader) as client:
        error_body(client.post(f"/topic/{PACKAGES}", json=package(gateway[0])), 403, "topic_forbidden")
        assert client.get("/topics").json()["topics"] == []


def test_limits(broker: Broker, gateway: tuple[str, str]) -> None:
    with broker.client(gateway[1]) as client:
        error_body(client.post(f"/topic/{PACKAGES}", content=b"x" * (3 * 1024 * 1024)), 413, "too_large")
        error_body(
            client.post(f"/topic/{PACKAGES}", json=[package(gateway[0], samples=2)] * 51), 413, "batch_too_large"
        )

        def slow() -> Iterator[bytes]:
            yield b'{"package_id": '
            time.sleep(4.5)  # longer than VIGIL_REST_REQUEST_TIMEOUT_S=3
            yield b'"x"}'

        error_body(client.post(f"/topic/{PACKAGES}", content=slow()), 504, "timeout")
    limited = broker.token(f"gw-rate-{uuid.uuid4().hex[:4]}", "--role", "gateway")
    with broker.client(limited) as client:
        for _ in range(2):  # a fresh bucket, then one refilled after a pause
            began, passed, refused = time.monotonic(), 0, None
            for _ in range(500):  # until the first 429, however slowly this machine sends (bounded)
                answer = client.get("/topics")
                if answer.status_code == 429:
                    refused = answer
                    break
                assert answer.status_code == 200, answer.text
                passed += 1
            # Burst 20 and 20/s: at least the burst goes through, at most what the bucket can have held.
            assert refused is not None
            assert 20 <= passed <= 20 + 20 * (time.monotonic() - began) + 1
            assert int(refused.headers["retry-after"]) >= 1
            time.sleep(1.5)  # refills the whole burst


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
        body = error_body(client.get("/topics", headers={"x-long": "x" * 70_000}), 431, "head_too_large")
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
        error_body(wrong, 422, "hash_mismatch")
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
        error_body(other.get(f"/claims/{claim['claim_id']}"), 403, "claim_forbidden")
    with broker.client(app) as client:
        redeemed = client.get(f"/claims/{claim['claim_id']}")
        assert redeemed.status_code == 200
        assert redeemed.content == data
        assert redeemed.headers["x-vigil-sha256"] == hashlib.sha256(data).hexdigest()
        deadline = time.monotonic() + 10
        while client.get(f"/claims/{claim['claim_id']}").status_code != 404:  # deleted after the claim
            assert time.monotonic() < deadline, "the claimed object was not deleted"
            time.sleep(0.2)


def test_a_claim_downloaded_slower_than_the_request_timeout_arrives_whole(
    broker: Broker, gateway: tuple[str, str]
) -> None:
    # The broker's timeout (3 s here) bounds the time to start answering, not the client's pace afterwards: cut
    # there, the client had a 200 and a truncated body.
    gateway_id, token = gateway
    data = os.urandom(24 * 1024 * 1024)
    doc = package(gateway_id)
    del doc["samples"]
    with broker.client(token) as client:
        sent = client.post(
            f"/topic/{PACKAGES}",
            data={"package": json.dumps(doc), "sha256": hashlib.sha256(data).hexdigest()},
            files={"file": ("vib.wav", data, "audio/wav")},
        )
    assert sent.status_code == 202, sent.text
    claim_id = sent.json()["claim"]["claim_id"]
    received = hashlib.sha256()
    began = time.monotonic()
    app = broker.token(f"app-{uuid.uuid4().hex[:4]}", "--role", "app")
    with broker.client(app) as client, client.stream("GET", f"/claims/{claim_id}") as answer:
        assert answer.status_code == 200
        for chunk in answer.iter_bytes(64 * 1024):  # ~6 s at this pace, twice the timeout
            received.update(chunk)
            time.sleep(0.015)
    assert time.monotonic() - began > 3  # slower than the timeout indeed, or the test proves nothing
    assert received.hexdigest() == hashlib.sha256(data).hexdigest()


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
        error_body(client.get(f"/claims/{expired.claim_id}"), 410, "claim_expired")
        error_body(client.get(f"/claims/{expired.claim_id}"), 404, "unknown_claim")  # deleted on the refusal
        swept = ClaimStore(_minio(platform), "raw-blobs").sweep(now=datetime.now(UTC) + timedelta(days=2))
        assert kept.claim_id in swept
        error_body(client.get(f"/claims/{kept.claim_id}"), 404, "unknown_claim")


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
