"""Metadata registry: read-only SPARQL over the registered sensors, in the W3C JSON results format."""

from __future__ import annotations

import pytest

from connectors.registry import (
    Registry,
    SparqlError,
    ask,
    query,
    results,
)
from tests.unit.registry_support import (
    EXAMPLE,
    SENSORS_ON_MACHINE,
    no_network,  # noqa: F401 - an autouse fixture: importing it applies it
    sensor,
)

pytestmark = pytest.mark.unit


# --- SPARQL ------------------------------------------------------------------


def test_sparql_finds_a_sensor_by_its_machine() -> None:
    registry = Registry()
    wanted = registry.put_document(EXAMPLE)
    registry.put_document(sensor("mill-07", quantity="acceleration", en="Spindle vibration"))

    variables, rows = query(registry, SENSORS_ON_MACHINE)

    assert variables == ["sensor", "quantity", "label"]
    assert rows == [(f"urn:uuid:{wanted.sensor_id}", "temperature", "Main bearing temperature")]


def test_sparql_sees_extras_and_rebuilds_after_changes() -> None:
    registry = Registry()
    entry = registry.put_document(EXAMPLE)
    by_maker = "SELECT ?s WHERE { ?s schema:manufacturer ?m FILTER(?m = 'Acme Sensors') }"
    assert query(registry, by_maker)[1] == [(f"urn:uuid:{entry.sensor_id}",)]
    assert ask(registry, "ASK { ?s sosa:observes 'temperature' }")

    other = registry.put_document({**sensor("press-02"), "schema:manufacturer": "Acme Sensors"})
    assert len(query(registry, by_maker)[1]) == 2
    registry.delete(entry.sensor_id)
    assert query(registry, by_maker)[1] == [(f"urn:uuid:{other.sensor_id}",)]


@pytest.mark.parametrize(
    ("sparql", "message"),
    [
        ("INSERT DATA { <urn:a> <urn:b> <urn:c> }", "Update is not allowed"),
        ("DELETE WHERE { ?s ?p ?o }", "Update is not allowed"),
        ("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "expected a SELECT"),
        ("ASK { ?s ?p ?o }", "use ask()"),
        ("SELECT * FROM <http://example.org/g> WHERE { ?s ?p ?o }", "FROM"),
        ("SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }", "SERVICE"),
        ("SELEKT ?s WHERE { ?s ?p ?o }", "syntax error"),
    ],
)
def test_sparql_refuses_what_it_does_not_answer(sparql: str, message: str) -> None:
    registry = Registry()
    registry.put_document(EXAMPLE)
    with pytest.raises(SparqlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        query(registry, sparql)


def test_sparql_answers_ask_and_select_in_the_w3c_json_results_format() -> None:
    registry = Registry()
    entry = registry.put_document(EXAMPLE)
    assert results(registry, "ASK { ?s sosa:observes 'temperature' }") == {"head": {}, "boolean": True}
    assert results(registry, "ASK { ?s sosa:observes 'humidity' }") == {"head": {}, "boolean": False}
    selected = results(
        registry,
        "SELECT ?s ?label ?nothing WHERE { ?s sosa:observes 'temperature' ; rdfs:label ?label "
        "FILTER(lang(?label) = 'en') OPTIONAL { ?s sosa:hosts ?nothing } }",
    )
    sensor = {"type": "uri", "value": f"urn:uuid:{entry.sensor_id}"}
    label = {"type": "literal", "value": EXAMPLE["label"]["en"], "xml:lang": "en"}
    assert selected == {
        "head": {"vars": ["s", "label", "nothing"]},
        "results": {"bindings": [{"s": sensor, "label": label}]},  # unbound: left out
    }
    with pytest.raises(SparqlError, match="only SELECT and ASK"):
        results(registry, "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")


@pytest.mark.parametrize(
    ("sparql", "message"),
    [
        ('SELECT ?s WHERE { ?s ?p ?o FILTER(regex(str(?o), "(")) }', "(error): missing ), unterminated subpattern"),
        ("SELECT ?s WHERE { ?s ?p ?o } ORDER BY xsd:dateTime(?o)", "(TypeError): '<' not supported"),
        ('ASK { ?s ?p ?o FILTER(regex(str(?o), "[")) }', "(error): unterminated character set"),
    ],
)
def test_sparql_that_fails_while_running_is_a_sparql_error(sparql: str, message: str) -> None:
    registry = Registry()
    registry.put_document(EXAMPLE)
    registry.put_document(sensor("press-02"))  # two sensors: ORDER BY has values to compare
    with pytest.raises(SparqlError, match="the query failed while running") as caught:
        results(registry, sparql)
    assert message in str(caught.value)
