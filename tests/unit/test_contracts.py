"""Contracts: examples validate, invalid ones fail naming the field, models round-trip, JSON-LD expands to SOSA/SSN."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from contracts import (
    CONTEXT_V1,
    TOPICS,
    Alert,
    AuditEvent,
    CleanReadingBatch,
    DeadLetter,
    EdgePackage,
    FlaggedSamples,
    Samples,
    SensorDescription,
    UnknownContextError,
    Window,
)
from contracts import avro as avro_codec
from contracts.export import EXPORTED, SCHEMA_DIR, render
from contracts.jsonld import SOSA, SSN, SSN_SYSTEM, expand, frozen_document_loader
from contracts.topics import CleanupPolicy

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts" / "examples"
MODELS: dict[str, type[BaseModel]] = {
    "edge_package": EdgePackage,
    "sensor_description": SensorDescription,
    "dead_letter": DeadLetter,
    "alert": Alert,
    "clean_reading_batch": CleanReadingBatch,
    "flagged_samples": FlaggedSamples,
    "audit_event": AuditEvent,
}
VALID = sorted(EXAMPLES.glob("*.json"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.json"))


def _model_for(path: Path) -> type[BaseModel]:
    return MODELS[path.name.split(".")[0]]


def test_every_model_has_an_example() -> None:
    assert {p.name.split(".")[0] for p in VALID} == set(MODELS)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_example_validates_and_round_trips_as_json(path: Path) -> None:
    model = _model_for(path)
    parsed = model.model_validate_json(path.read_bytes())
    again = model.model_validate_json(parsed.model_dump_json(by_alias=True, exclude_none=True))
    assert again == parsed
    assert json.loads(parsed.model_dump_json(by_alias=True, exclude_none=True)) == json.loads(path.read_text())


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_is_rejected_naming_the_field(path: Path) -> None:
    case = json.loads(path.read_text())
    model = MODELS[{"EdgePackage": "edge_package", "SensorDescription": "sensor_description"}[case["model"]]]
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(json.dumps(case["document"]))
    first = caught.value.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    assert (field, first["type"]) == (case["expect"]["field"], case["expect"]["type"])
    if field:
        assert field in str(caught.value)  # the message a gateway author reads names the field


@pytest.mark.parametrize(
    "model", [DeadLetter, Alert, CleanReadingBatch, FlaggedSamples, AuditEvent], ids=lambda m: m.__name__
)
def test_avro_round_trip(model: type[BaseModel]) -> None:
    path = next(p for p in VALID if _model_for(p) is model)
    original = model.model_validate_json(path.read_bytes())
    payload = avro_codec.encode(original)
    assert avro_codec.decode(model, payload) == original


def test_avro_schema_is_parsed_once() -> None:
    assert avro_codec.parsed_schema(Alert) is avro_codec.parsed_schema(Alert)


def test_non_finite_value_is_rejected_with_its_index() -> None:
    doc = json.loads((EXAMPLES / "edge_package.samples.json").read_text())
    raw = json.dumps(doc).replace(str(doc["samples"]["v"][4]), "NaN", 1)
    with pytest.raises(ValidationError) as caught:
        EdgePackage.model_validate_json(raw)
    error = caught.value.errors()[0]
    assert error["type"] == "non_finite_value"
    assert "index 4" in error["msg"]


def _iris(node: Any) -> set[str]:
    """Every property IRI and @type IRI in an expanded JSON-LD document."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _iris(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "@type":
                found |= set(value if isinstance(value, list) else [value])
            elif not key.startswith("@"):
                found.add(key)
            found |= _iris(value)
    return found


def test_edge_package_expands_to_sosa() -> None:
    doc = json.loads((EXAMPLES / "edge_package.samples.json").read_text())
    iris = _iris(expand(doc))
    assert {SOSA + "ObservationCollection", SOSA + "madeBySensor", SOSA + "phenomenonTime", SOSA + "hasResult"} <= iris


def test_sensor_description_expands_to_sosa_ssn_with_languages_and_extensions() -> None:
    doc = json.loads((EXAMPLES / "sensor_description.json").read_text())
    expanded = expand(doc)
    iris = _iris(expanded)
    assert {
        SOSA + "Sensor",
        SOSA + "observes",
        SOSA + "isHostedBy",
        SSN + "hasDeployment",
        SSN_SYSTEM + "Frequency",
        SSN_SYSTEM + "MeasurementRange",
        "https://schema.org/manufacturer",
        "https://example.org/plant#calibrationDue",
    } <= iris
    labels = expanded[0]["http://www.w3.org/2000/01/rdf-schema#label"]
    assert {item["@language"] for item in labels} == {"en", "de", "it"}


def test_extension_properties_survive_a_round_trip() -> None:
    sensor = SensorDescription.model_validate_json((EXAMPLES / "sensor_description.json").read_bytes())
    assert sensor.extensions == {"schema:manufacturer": "Acme Sensors", "ex:calibrationDue": "2027-06-01"}
    assert json.loads(sensor.to_wire())["schema:manufacturer"] == "Acme Sensors"


def test_document_loader_serves_only_shipped_contexts() -> None:
    assert "@context" in frozen_document_loader(CONTEXT_V1)["document"]
    with pytest.raises(UnknownContextError):
        frozen_document_loader("https://example.org/anything.jsonld")


def test_models_are_frozen() -> None:
    sensor = SensorDescription.model_validate_json((EXAMPLES / "sensor_description.json").read_bytes())
    with pytest.raises(ValidationError):
        sensor.unit = "degF"  # type: ignore[misc]


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_published_json_schema_is_current(name: str) -> None:
    assert (SCHEMA_DIR / name).read_text() == render(EXPORTED[name]), "run `python -m contracts.export`"


def test_topic_declarations() -> None:
    names = [t.name for t in TOPICS]
    assert len(names) == len(set(names))
    assert {
        "edge.packages.v1",
        "edge.metadata.v1",
        "edge.deadletter.v1",
        "edge.parked.v1",
        "readings.clean.v1",
        "readings.flagged.v1",
        "alerts.v1",
        "audit.v1",
    } == set(names)
    compacted = {t.name for t in TOPICS if t.cleanup_policy is CleanupPolicy.COMPACT}
    assert compacted == {"edge.metadata.v1"}


@settings(max_examples=50, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=1, max_value=10_000_000), min_size=0, max_size=300),
    values=st.data(),
)
def test_any_valid_sample_block_round_trips(steps: list[int], values: st.DataObject) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    t0 = int(start.timestamp() * 1_000_000)
    times = [t0]
    for step in steps:
        times.append(times[-1] + step)
    v = values.draw(
        st.lists(
            st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
            min_size=len(times),
            max_size=len(times),
        )
    )
    end = start + timedelta(microseconds=times[-1] - t0)
    package = EdgePackage(
        package_id=uuid4(),
        gateway_id="gw-1",
        sensor_id=uuid4(),
        sent_at=end,
        window=Window(start=start, end=end),
        samples=Samples(t=times, v=v),
    )
    assert EdgePackage.from_wire(package.to_wire()) == package


def test_sample_arrays_are_made_once_and_follow_the_lists() -> None:
    package = EdgePackage.from_wire((EXAMPLES / "edge_package.samples.json").read_bytes())
    assert package.samples is not None
    arrays = package.samples.arrays()
    assert arrays is package.samples.arrays()  # built during validation, not again per use
    assert arrays.t.tolist() == package.samples.t
    assert [None if np.isnan(x) else x for x in arrays.v.tolist()] == package.samples.v
    assert not arrays.v.flags.writeable
    # A cache, not data: equal packages stay equal whether or not one of them has built its arrays.
    assert EdgePackage.model_construct(**dict(package)) == package
    copied = package.samples.model_copy(update={"v": [1.0] * len(package.samples.v)})
    assert copied.arrays().v.tolist() == [1.0] * len(package.samples.v)


def test_flagged_samples_refuse_an_ok_code_and_misaligned_columns() -> None:
    example = json.loads((EXAMPLES / "flagged_samples.json").read_text())
    with pytest.raises(ValidationError) as caught:
        FlaggedSamples.model_validate({**example, "quality": ["ok", "spike"]})
    assert caught.value.errors()[0]["type"] == "flagged_ok"
    with pytest.raises(ValidationError) as caught:
        FlaggedSamples.model_validate({**example, "sample_index": [3]})
    assert caught.value.errors()[0]["type"] == "length_mismatch"


def test_sensor_with_an_empty_context_list_is_refused_not_crashed() -> None:
    # `[]` names no context at all; the validator read its first item and raised IndexError past pydantic.
    document = {**json.loads((EXAMPLES / "sensor_description.json").read_text()), "@context": []}
    with pytest.raises(ValidationError) as caught:
        SensorDescription.model_validate(document)
    assert caught.value.errors()[0]["type"] == "unknown_context"
