"""Metadata registry core: JSON-LD acceptance and rendering, the in-memory store and search (SPARQL:
tests/unit/test_registry_sparql.py)."""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pyld import jsonld

from connectors.registry import (
    DocumentError,
    Registry,
    accept,
    canonical,
    render,
)
from connectors.registry.documents import MAX_DEPTH
from contracts import CONTEXT_V1, SensorDescription
from contracts.jsonld import frozen_document_loader
from tests.unit.registry_support import (
    EXAMPLE,
    INVALID_SENSORS,
    no_network,  # noqa: F401 - an autouse fixture: importing it applies it
    sensor,
)

pytestmark = pytest.mark.unit


# --- documents ---------------------------------------------------------------


def test_example_round_trips() -> None:
    description, extras = accept(EXAMPLE)
    document = render(description, extras)
    assert document["@context"] == CONTEXT_V1
    assert document == canonical(EXAMPLE)
    assert canonical(document) == document  # the rendered form is already canonical
    assert accept(document) == (description, extras)
    assert SensorDescription.from_wire(json.dumps(document)) == description  # valid on edge.metadata.v1


def test_extras_from_other_vocabularies_are_preserved() -> None:
    document = copy.deepcopy(EXAMPLE)
    document["@context"] = [CONTEXT_V1, {"ex": "https://example.org/plant#", "mfr": "http://schema.org/brand"}]
    document["http://schema.org/manufacturer"] = "ACME"
    document["mfr"] = "Acme Group"
    document["ex:note"] = {"@value": "Lager tauschen", "@language": "de"}

    description, extras = accept(document)

    assert extras == {
        "schema:manufacturer": "Acme Sensors",  # `schema` is a Vigil prefix: stays compact
        "https://example.org/plant#calibrationDue": "2027-06-01",  # a client prefix becomes the full IRI
        "http://schema.org/manufacturer": "ACME",
        "http://schema.org/brand": "Acme Group",
        "https://example.org/plant#note": {"@value": "Lager tauschen", "@language": "de"},
    }
    assert description.extensions == extras
    rendered = render(description, extras)
    assert {k: rendered[k] for k in extras} == extras
    assert accept(rendered) == (description, extras)


def test_labels_in_several_languages_survive() -> None:
    description, extras = accept(EXAMPLE)
    rendered = render(description, extras)
    assert rendered["label"] == EXAMPLE["label"]
    assert rendered["context"]["machine_label"] == {"en": "Hydraulic press 1", "de": "Hydraulikpresse 1"}
    # The same labels as @language value objects under the property IRI land in the language map.
    document = copy.deepcopy(EXAMPLE)
    del document["label"]
    document["rdfs:label"] = [{"@value": text, "@language": lang} for lang, text in EXAMPLE["label"].items()]
    assert accept(document)[0].label == EXAMPLE["label"]


def test_expanded_form_compacts_to_the_same_document() -> None:
    expanded = jsonld.expand(copy.deepcopy(EXAMPLE), {"documentLoader": frozen_document_loader})
    assert "@context" not in expanded[0]
    assert render(*accept(expanded)) == render(*accept(EXAMPLE))
    assert render(*accept(expanded[0])) == render(*accept(EXAMPLE))


def test_foreign_context_with_untyped_values_compacts_to_the_same_document() -> None:
    """A client's own terms for Vigil's properties, without Vigil's datatypes, still mean the Vigil fields."""
    expected = render(*accept({k: v for k, v in EXAMPLE.items() if not k.startswith(("schema:", "ex:"))}))
    ctx = {
        "sosa": "http://www.w3.org/ns/sosa/",
        "ssn": "http://www.w3.org/ns/ssn/",
        "s": "https://schema.org/",
        "v": "https://w3id.org/vigil/v1#",
        "name": {"@id": "http://www.w3.org/2000/01/rdf-schema#label", "@container": "@language"},
    }
    document = {
        "@context": ctx,
        "@type": "sosa:Sensor",
        "sosa:madeBySensor": EXAMPLE["sensor_id"],
        "name": EXAMPLE["label"],
        "sosa:observes": "temperature",
        "http://qudt.org/schema/qudt/unit": "degC",
        "http://www.w3.org/ns/ssn/systems/Frequency": 10.0,
        "http://www.w3.org/ns/ssn/systems/MeasurementRange": {"s:minValue": -40.0, "s:maxValue": 150.0},
        "v:thresholds": {"v:warningHigh": 80.0, "v:criticalHigh": 95.0},
        "ssn:hasDeployment": {
            "sosa:isHostedBy": "press-01",
            "v:machineLabel": [
                {"@value": "Hydraulic press 1", "@language": "en"},
                {"@value": "Hydraulikpresse 1", "@language": "de"},
            ],
            "v:machineKind": "hydraulic_press",
            "v:locationOnMachine": "main bearing, drive side",
            "s:location": "plant-a",
            "v:purpose": "bearing wear monitoring",
            "v:status": "active",
        },
        "s:dateModified": "2026-11-20T09:30:00Z",
    }
    assert render(*accept(document)) == expected


def test_unknown_context_url_is_rejected_without_fetching_it() -> None:
    document = {**EXAMPLE, "@context": "https://example.org/contexts/other.jsonld"}
    with pytest.raises(DocumentError) as caught:
        accept(document)
    assert caught.value.reason == "unknown_context"
    assert caught.value.field == "@context"
    assert "https://example.org/contexts/other.jsonld" in caught.value.detail


@pytest.mark.parametrize("path", INVALID_SENSORS, ids=lambda p: p.stem)
def test_invalid_examples_are_rejected_naming_the_field(path: Path) -> None:
    case = json.loads(path.read_text())
    with pytest.raises(DocumentError) as caught:
        accept(case["document"])
    assert caught.value.reason == "schema_violation"
    assert caught.value.field is not None
    assert caught.value.field.split(".")[0] == case["expect"]["field"]


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"sampling_rate_hz": float("nan")}, "non_finite_value", "sampling_rate_hz"),
        ({"vigil:colour": "red"}, "schema_violation", "vigil:colour"),
        ({"@id": "urn:example:sensor"}, "schema_violation", "@id"),
        ({"sosa:observes": {"@value": "temperature", "@language": "en"}}, "schema_violation", "quantity"),
        ({"@context": [CONTEXT_V1, {"label": "http://example.org/label"}]}, "schema_violation", "@context"),
    ],
    ids=["nan", "unknown-vigil-term", "foreign-id", "mistyped-vigil-property", "redefines-protected-term"],
)
def test_contract_violations_name_reason_and_field(change: dict[str, Any], reason: str, field: str) -> None:
    document = {k: v for k, v in EXAMPLE.items() if not (k == "quantity" and "sosa:observes" in change)}
    with pytest.raises(DocumentError) as caught:
        accept({**document, **change})
    assert (caught.value.reason, caught.value.field) == (reason, field)
    assert caught.value.detail


def test_non_object_is_malformed() -> None:
    with pytest.raises(DocumentError) as caught:
        accept("not a document")  # type: ignore[arg-type]
    assert caught.value.reason == "malformed_json"


# --- store -------------------------------------------------------------------


def test_put_get_replace_and_tombstone() -> None:
    registry = Registry()
    description, extras = accept(EXAMPLE)
    sensor_id = description.sensor_id
    assert registry.get(sensor_id) is None
    assert not registry.is_deleted(sensor_id)

    entry = registry.put(description, extras)
    assert registry.get(sensor_id) == entry
    assert entry.document() == render(description, extras)
    version = registry.version

    updated = registry.put_document({**EXAMPLE, "unit": "K"})
    assert registry.get(sensor_id) == updated
    assert len(registry) == 1
    assert registry.version > version

    assert registry.delete(sensor_id)
    assert registry.get(sensor_id) is None
    assert registry.is_deleted(sensor_id)
    assert not registry.delete(sensor_id)

    registry.put(description, extras)
    assert not registry.is_deleted(sensor_id)


def test_apply_record_replays_the_metadata_topic() -> None:
    registry = Registry()
    description, _ = accept(EXAMPLE)
    key = str(description.sensor_id).encode()
    entry = registry.apply_record(key, description.to_wire())
    assert entry is not None
    assert entry.extras == description.extensions
    registry.apply_record(key, None)
    assert registry.is_deleted(description.sensor_id)
    with pytest.raises(ValueError, match="differs"):
        registry.apply_record(str(uuid.uuid4()).encode(), description.to_wire())


def nested(levels: int) -> dict[str, Any]:
    """An extension value of `levels` nested objects."""
    value: Any = "x"
    for _ in range(levels):
        value = {"ex:n": value}
    assert isinstance(value, dict)
    return value


def test_a_description_nesting_too_deeply_is_refused_not_a_recursion_error() -> None:
    fits = {**EXAMPLE, "ex:deep": nested(MAX_DEPTH - 1)}  # the document is one level more
    assert "https://example.org/plant#deep" in accept(fits)[1]  # kept (a prefix only the client declared)
    for levels in (MAX_DEPTH, 400):  # 400: pyld alone would raise RecursionError
        with pytest.raises(DocumentError, match=f"deeper than the {MAX_DEPTH} levels") as caught:
            accept({**EXAMPLE, "ex:deep": nested(levels)})
        assert (caught.value.reason, caught.value.field) == ("schema_violation", "ex:deep")


def test_apply_record_refuses_unreadable_records_with_a_value_error() -> None:
    key = str(EXAMPLE["sensor_id"]).encode()
    with pytest.raises(ValueError, match="nests too deeply"):
        Registry().apply_record(key, b"[" * 5000 + b"]" * 5000)
    with pytest.raises(DocumentError, match="deeper than"):
        Registry().apply_record(key, json.dumps({**EXAMPLE, "ex:deep": nested(400)}).encode())


def test_search_matches_ids_site_quantity_and_labels_in_any_language() -> None:
    registry = Registry()
    bearing = registry.put_document(sensor("press-01", "plant-a", "temperature", en="Bearing", de="Lager"))
    spindle = registry.put_document(sensor("mill-07", "plant-b", "acceleration", en="Spindle vibration"))

    def ids(q: str) -> set[uuid.UUID]:
        return {e.sensor_id for e in registry.search(q, 10).items}

    assert ids("PRESS-01") == {bearing.sensor_id}
    assert ids("plant-b") == {spindle.sensor_id}
    assert ids("acceleration") == {spindle.sensor_id}
    assert ids("lager") == {bearing.sensor_id}  # German label
    assert ids("hydraulikpresse") == {bearing.sensor_id, spindle.sensor_id}  # machine label (copied example)
    assert ids("plant temperature") == {bearing.sensor_id}  # every word must match
    assert ids("nothing-like-this") == set()
    assert ids("") == {bearing.sensor_id, spindle.sensor_id}


def test_search_truncates_with_a_warning() -> None:
    registry = Registry()
    for i in range(12):
        registry.put_document(sensor(f"press-{i:02d}"))
    registry.put_document(sensor("mill-01", quantity="pressure"))

    result = registry.search("press", limit=5)

    assert result.total == 13
    assert result.truncated
    assert [e.description.context.machine_id for e in result.items] == [
        "mill-01",
        *(f"press-{i:02d}" for i in range(4)),
    ]
    assert result.warning is not None
    assert "13" in result.warning
    assert "first 5" in result.warning
    assert "narrow" in result.warning.casefold()
    assert registry.search("press", limit=5) == result  # stable
    complete = registry.search("mill", limit=5)
    assert (complete.total, complete.truncated, complete.warning) == (1, False, None)
    with pytest.raises(ValueError, match="limit"):
        registry.search("press", limit=0)


def test_replay_ends_in_the_state_of_applying_every_record_in_order() -> None:
    def described(**change: Any) -> bytes:
        return accept({**EXAMPLE, **change})[0].to_wire()

    a, b, c, d, e, f, g, h, i, j = (uuid.uuid4() for _ in range(10))
    records: dict[bytes, list[bytes | None]] = {
        str(a).encode(): [described(sensor_id=str(a)), described(sensor_id=str(a), unit="K"), b"{not json"],
        str(b).encode(): [described(sensor_id=str(b)), None],  # deleted
        str(c).encode(): [None, described(sensor_id=str(c), unit="K")],  # deleted, then registered again
        str(d).encode(): [b'{"@context": "https://example.org/other"}'],  # nothing that applies
        str(e).encode(): [described(sensor_id=str(f))],  # another sensor's document under this key
        b"not-a-uuid": [described(sensor_id=str(a))],
        str(g).encode(): [described(sensor_id=str(g)), None, None, b"{}"],  # deleted twice, then a bad record
        str(h).encode(): [None, None],  # deleted but never registered: unknown, not retired
        # Records that once raised RecursionError past the replay (and stopped the registry's catch-up).
        str(i).encode(): [described(sensor_id=str(i)), b"[" * 5000 + b"]" * 5000],
        str(j).encode(): [json.dumps({**EXAMPLE, "sensor_id": str(j), "ex:deep": nested(400)}).encode()],
    }
    one_by_one = Registry()
    for key, values in records.items():
        for value in values:
            with contextlib.suppress(ValueError):
                one_by_one.apply_record(key, value)

    replayed = Registry()
    refused = replayed.replay(records)

    def state(registry: Registry) -> tuple[list[dict[str, Any]], list[bool]]:
        return [x.document() for x in registry.entries()], [
            registry.is_deleted(s) for s in (a, b, c, d, e, f, g, h, i, j)
        ]

    assert state(replayed) == state(one_by_one)
    assert replayed.get(a) is not None
    assert replayed.get(a).description.unit == "K"  # type: ignore[union-attr]
    assert replayed.is_deleted(b)
    assert replayed.get(c) is not None
    assert replayed.get(f) is None  # a record whose key and document disagree changes nothing
    assert replayed.is_deleted(g)
    assert not replayed.is_deleted(h)
    assert replayed.get(i) is not None  # its older record applies; the unreadable newest one is skipped
    assert replayed.get(j) is None
    # Refused (key, index among the key's records): a's, g's and i's broken newest records (their older ones
    # apply), d's, e's, j's and the bad key's.
    assert sorted((key, index) for key, index, _ in refused) == sorted(
        [
            (str(a).encode(), 2),
            (str(d).encode(), 0),
            (str(e).encode(), 0),
            (b"not-a-uuid", 0),
            (str(g).encode(), 3),
            (str(i).encode(), 1),
            (str(j).encode(), 0),
        ]
    )
