"""The metadata registry over HTTPS: JSON-LD in and out, search, SPARQL, and the compacted topic behind it."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from connectors.rest.cli import health_summary
from contracts import SensorDescription
from infra.rest_broker import Broker, running_broker
from infra.settings import InfraSettings
from infra.streams_worker import free_port
from tests.integration.rest_support import ends, read_since

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "contracts" / "examples" / "sensor_description.json"


def _sensor(machine: str, site: str, label: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text())
    doc["sensor_id"] = str(uuid.uuid4())
    doc["context"] = {**doc["context"], "machine_id": machine, "site": site}
    doc["label"] = {"en": label, "de": f"{label} (de)"}
    return doc


@pytest.fixture(scope="module")
def registrar(broker: Broker) -> str:
    return broker.token(f"ops-{uuid.uuid4().hex[:4]}", "--role", "admin", "--topic", "edge.metadata.v1")


def test_put_then_get_keeps_extensions_and_languages(platform: InfraSettings, broker: Broker, registrar: str) -> None:
    doc = _sensor(f"press-{uuid.uuid4().hex[:6]}", "plant-rest", "Main bearing temperature")
    since = ends(platform, "edge.metadata.v1")
    with broker.client(registrar) as client:
        put = client.put(f"/sensors/{doc['sensor_id']}", json=doc)
        assert put.status_code == 200, put.text
        assert put.headers["content-type"].startswith("application/ld+json")
        got = client.get(f"/sensors/{doc['sensor_id']}").json()
    assert "https://w3id.org/vigil/contexts/v1.jsonld" in json.dumps(got["@context"])
    assert got["label"] == doc["label"]
    assert got["schema:manufacturer"] == "Acme Sensors"
    assert "2027-06-01" in json.dumps(got)  # the ex: extension, kept (as a full IRI)
    published = [m for m in read_since(platform, "edge.metadata.v1", since) if m.key() == doc["sensor_id"].encode()]
    assert len(published) == 1
    assert SensorDescription.model_validate_json(published[0].value() or b"").sensor_id == uuid.UUID(doc["sensor_id"])


def test_health_says_the_registry_has_read_the_metadata_topic(broker: Broker) -> None:
    # The fixture's broker start waits for the registry (VIGIL_REST_REGISTRY_WAIT_S), and this topic is small.
    with broker.client(None) as client:
        health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "registry": "ready"}
    assert health_summary(broker.url, broker.tls()) is None  # what `make status` shows: plain "running"
    closed = f"https://127.0.0.1:{free_port()}"
    assert health_summary(closed, broker.tls()) == "not answering /health (see its log)"


def test_put_refusals(broker: Broker, registrar: str, gateway: tuple[str, str]) -> None:
    doc = _sensor("press-x", "plant-rest", "x")
    with broker.client(registrar) as client:
        mismatch = client.put(f"/sensors/{uuid.uuid4()}", json=doc)
        assert (mismatch.status_code, mismatch.json()["error"]) == (422, "id_mismatch")
        bad = client.put(f"/sensors/{doc['sensor_id']}", json={**doc, "@context": "https://example.org/other.jsonld"})
        assert (bad.status_code, bad.json()["error"], bad.json()["field"]) == (422, "unknown_context", "@context")
        assert client.get(f"/sensors/{uuid.uuid4()}").status_code == 404
    with broker.client(gateway[1]) as client:  # a gateway token without edge.metadata.v1
        assert client.put(f"/sensors/{doc['sensor_id']}", json=doc).status_code == 403


def test_search_truncates_with_a_warning(broker: Broker, registrar: str) -> None:
    site = f"site-{uuid.uuid4().hex[:6]}"
    docs = [_sensor(f"mill-{i}", site, f"Spindle vibration {i}") for i in range(4)]
    with broker.client(registrar) as client:
        for doc in docs:
            assert client.put(f"/sensors/{doc['sensor_id']}", json=doc).status_code == 200
        everything = client.get("/sensors", params={"q": site}).json()
        assert (everything["total"], everything["truncated"], len(everything["items"])) == (4, False, 4)
        few = client.get("/sensors", params={"q": site, "limit": 2}).json()
        assert (few["total"], few["truncated"], len(few["items"])) == (4, True, 2)
        assert "4" in few["warning"]
        one = client.get("/sensors", params={"q": f"{site} mill-3"}).json()
        assert [d["sensor_id"] for d in one["items"]] == [docs[3]["sensor_id"]]
        by_label = client.get("/sensors", params={"q": f"{site} spindle"}).json()
        assert by_label["total"] == 4


def test_sparql_finds_a_sensor_by_its_machine(broker: Broker, registrar: str) -> None:
    machine = f"press-{uuid.uuid4().hex[:6]}"
    doc = _sensor(machine, "plant-rest", "Main bearing temperature")
    sparql = f"""
        PREFIX sosa: <http://www.w3.org/ns/sosa/>
        PREFIX ssn:  <http://www.w3.org/ns/ssn/>
        SELECT ?sensor ?quantity WHERE {{
          ?sensor a sosa:Sensor ; sosa:observes ?quantity ; ssn:hasDeployment/sosa:isHostedBy "{machine}" .
        }}"""
    with broker.client(registrar) as client:
        assert client.put(f"/sensors/{doc['sensor_id']}", json=doc).status_code == 200
        answer = client.get("/sparql", params={"query": sparql}).json()
        posted = client.post("/sparql", data={"query": sparql}).json()
        refused = client.post("/sparql", data={"query": "DELETE WHERE { ?s ?p ?o }"})
    assert answer["head"]["vars"] == ["sensor", "quantity"]
    assert [b["sensor"]["value"] for b in answer["results"]["bindings"]] == [f"urn:uuid:{doc['sensor_id']}"]
    assert posted == answer
    assert (refused.status_code, refused.json()["error"]) == (400, "bad_sparql")


def test_sparql_answers_ask_and_refuses_queries_that_fail_while_running(broker: Broker, registrar: str) -> None:
    machine = f"press-{uuid.uuid4().hex[:6]}"
    doc = _sensor(machine, "plant-rest", "Main bearing temperature")
    hosted = 'ASK {{ ?s ssn:hasDeployment/sosa:isHostedBy "{}" }}'
    with broker.client(registrar) as client:
        assert client.put(f"/sensors/{doc['sensor_id']}", json=doc).status_code == 200
        yes = client.get("/sparql", params={"query": hosted.format(machine)})
        no = client.post("/sparql", data={"query": hosted.format(f"{machine}-nowhere")})
        failing = [
            client.get("/sparql", params={"query": 'SELECT ?s WHERE { ?s ?p ?o FILTER(regex(str(?o), "(")) }'}),
            client.post("/sparql", data={"query": "SELECT ?s WHERE { ?s ?p ?o } ORDER BY xsd:dateTime(?o)"}),
        ]
    assert (yes.status_code, yes.json()) == (200, {"head": {}, "boolean": True})  # "use ask()" 400 before
    assert (no.status_code, no.json()) == (200, {"head": {}, "boolean": False})
    for response, words in zip(failing, ["unterminated subpattern", "TypeError"], strict=True):
        body = response.json()
        assert (response.status_code, body["error"], body["field"]) == (400, "bad_sparql", "query"), body  # 500
        assert words in body["detail"]


def _nested(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"ex:n": value}
    return value


def test_put_refuses_documents_nesting_too_deeply_with_422(broker: Broker, registrar: str) -> None:
    doc = _sensor("press-deep", "plant-rest", "deep")
    with broker.client(registrar) as client:
        extension = client.put(f"/sensors/{doc['sensor_id']}", json={**doc, "ex:deep": _nested(400)})
        deep_json = client.put(
            f"/sensors/{doc['sensor_id']}",
            content=b"[" * 5000 + b"]" * 5000,
            headers={"content-type": "application/json"},
        )
        utf16 = client.put(
            f"/sensors/{doc['sensor_id']}",
            content=json.dumps(doc).encode("utf-16"),
            headers={"content-type": "application/json"},
        )
    body = extension.json()  # pyld raised RecursionError: 500 before
    assert (extension.status_code, body["error"], body["field"]) == (422, "schema_violation", "ex:deep"), body
    assert "64 levels" in body["detail"]
    assert (deep_json.status_code, deep_json.json()["error"]) == (422, "malformed_json"), deep_json.text
    assert (utf16.status_code, utf16.json()["error"]) == (422, "malformed_json"), utf16.text


def _produce_metadata(platform: InfraSettings, records: list[tuple[str, bytes | None]]) -> None:
    """Records written straight to edge.metadata.v1, as a gateway (or anything else) may write them."""
    producer = Producer({"bootstrap.servers": platform.kafka_bootstrap, "partitioner": "murmur2_random"})
    for key, value in records:
        producer.produce("edge.metadata.v1", key=key.encode(), value=value)
    assert producer.flush(30) == 0


def test_the_registry_skips_records_it_cannot_read_and_keeps_following(
    platform: InfraSettings, broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    deep_json, deep_extension = str(uuid.uuid4()), _sensor("press-poison", "plant-rest", "poison")
    deep_extension["ex:deep"] = _nested(400)
    good = _sensor(f"press-{uuid.uuid4().hex[:6]}", "plant-rest", "after the poison")
    unreadable = [deep_json, deep_extension["sensor_id"]]
    reader = broker.token(f"app-{uuid.uuid4().hex[:4]}", "--role", "app")

    def wait_for_the_good_one(client: httpx.Client) -> None:
        deadline = time.monotonic() + 30
        while (status := client.get(f"/sensors/{good['sensor_id']}").status_code) != 200:
            assert status in {404, 503}, status
            assert time.monotonic() < deadline, f"the registry did not apply the record after them ({status})"
            time.sleep(0.2)

    def skipped(log: Path) -> list[str]:
        return [key for key in unreadable if f"(sensor key '{key}')" in log.read_text()]

    try:
        _produce_metadata(
            platform,
            [
                (deep_json, b"[" * 5000 + b"]" * 5000),  # json.loads: RecursionError
                (deep_extension["sensor_id"], json.dumps(deep_extension).encode()),  # pyld: RecursionError
                (good["sensor_id"], json.dumps(good).encode()),
            ],
        )
        # The running broker's tail thread, past its catch-up, once died on the first of them: it would never
        # have applied the good record after them.
        with broker.client(reader) as client:
            wait_for_the_good_one(client)
        assert skipped(broker.log) == unreadable
        # A broker starting now meets them in its catch-up, which once never finished: 503 for every lookup.
        with running_broker(platform, tmp_path_factory.mktemp("rest-skips"), VIGIL_REST_REGISTRY_WAIT_S="30") as fresh:
            with fresh.client() as client:
                assert client.get("/health").json()["registry"] == "ready"
            with fresh.client(fresh.token(f"app-{uuid.uuid4().hex[:4]}", "--role", "app")) as client:
                wait_for_the_good_one(client)
            assert skipped(fresh.log) == unreadable
    finally:  # tombstones: compaction removes the unreadable records
        _produce_metadata(platform, [(key, None) for key in unreadable])
