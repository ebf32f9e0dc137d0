"""Shared by the registry unit tests: the example sensor, a factory of sensors, and no network."""

from __future__ import annotations

import copy
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).parents[2] / "contracts" / "examples"
EXAMPLE: dict[str, Any] = json.loads((EXAMPLES / "sensor_description.json").read_text())
INVALID_SENSORS = sorted((EXAMPLES / "invalid").glob("sensor_*.json"))

# Example for the docs: find sensors by the machine (asset) they are deployed on. The Vigil
# context maps `context` to ssn:hasDeployment and `machine_id` to sosa:isHostedBy; the PREFIX
# lines are optional (the Vigil context's prefixes are predeclared). Match plain literals
# ("press-01"), not "press-01"^^xsd:string.
SENSORS_ON_MACHINE = """
PREFIX sosa: <http://www.w3.org/ns/sosa/>
PREFIX ssn:  <http://www.w3.org/ns/ssn/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?sensor ?quantity ?label WHERE {
  ?sensor a sosa:Sensor ;
          sosa:observes ?quantity ;
          rdfs:label ?label ;
          ssn:hasDeployment/sosa:isHostedBy "press-01" .
  FILTER(langMatches(lang(?label), "en"))
}
ORDER BY ?sensor
"""


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection (e.g. to fetch a JSON-LD context) fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def sensor(
    machine: str = "press-01", site: str = "plant-a", quantity: str = "temperature", **labels: str
) -> dict[str, Any]:
    document = copy.deepcopy(EXAMPLE)
    document["sensor_id"] = str(uuid.uuid4())
    document["context"]["machine_id"] = machine
    document["context"]["site"] = site
    document["quantity"] = quantity
    if labels:
        document["label"] = labels
    return document
