"""The REST broker's answers to bodies it cannot take, over real HTTPS against the real Kafka: a precise 4xx,
never a 500, and nothing of the request written."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from connectors.rest.kafka import MAX_MESSAGE_BYTES, AsyncProducer, Outgoing, ProduceError
from infra.rest_broker import Broker
from infra.settings import InfraSettings
from tests.integration.rest_support import PACKAGES, ends, error_body, package, read_since

pytestmark = pytest.mark.integration


def test_bad_bodies_get_422_naming_the_field(broker: Broker, gateway: tuple[str, str]) -> None:
    with broker.client(gateway[1]) as client:
        error_body(
            client.post(f"/topic/{PACKAGES}", content=b"{not json", headers={"content-type": "application/json"}),
            422,
            "malformed_json",
        )
        bad = package(gateway[0])
        bad["samples"]["v"] = bad["samples"]["v"][:-1]
        body = error_body(client.post(f"/topic/{PACKAGES}", json=[package(gateway[0]), bad]), 422, "length_mismatch")
        assert str(body["field"]).startswith("[1]")
        naive = package(gateway[0], sent_at="2026-11-23T08:00:01")
        body = error_body(client.post(f"/topic/{PACKAGES}", json=naive), 422, "naive_datetime")
        assert body["field"] == "sent_at"
        nan = json.dumps(package(gateway[0])).replace('"v": [0.0', '"v": [NaN', 1)
        body = error_body(client.post(f"/topic/{PACKAGES}", content=nan.encode()), 422, "non_finite_value")
        assert "samples" in str(body["field"])
        error_body(client.post(f"/topic/{PACKAGES}", json=[]), 422, "empty_batch")


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
            body = error_body(
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
            body = error_body(
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
        alone = error_body(client.post(f"/topic/{PACKAGES}", json=big), 413, "oversized")
        batch = error_body(client.post(f"/topic/{PACKAGES}", json=[small, big]), 413, "oversized")
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
    body = error_body(over, 413, "oversized")  # and not looser: librdkafka would have refused it (a 500 before)
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
