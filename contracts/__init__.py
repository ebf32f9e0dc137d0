"""Vigil's contracts: the single source of truth for data on the wire and at rest.

Gateway authors: see `contracts/README.md`, the JSON Schemas in
`contracts/jsonschema/` and the examples in `contracts/examples/`.
"""

from contracts.alert import Alert, AlertSource, AlertState, Severity
from contracts.audit import AuditEvent, AuditOutcome
from contracts.deadletter import DeadLetter, ReasonCode
from contracts.errors import ContractError
from contracts.jsonld import CONTEXT_V1, KNOWN_CONTEXTS, UnknownContextError
from contracts.metadata import (
    MeasurementRange,
    Quantity,
    SensorContext,
    SensorDescription,
    SensorStatus,
    Thresholds,
)
from contracts.package import MAX_SAMPLES, ClaimCheck, EdgePackage, Samples, Window
from contracts.readings import CleanReadingBatch, ClockSource, FlaggedSamples, QualityCode
from contracts.topics import MAX_INPUT_BYTES, MAX_OUTPUT_BYTES, TOPICS, TopicSpec

__all__ = [
    "CONTEXT_V1",
    "KNOWN_CONTEXTS",
    "MAX_INPUT_BYTES",
    "MAX_OUTPUT_BYTES",
    "MAX_SAMPLES",
    "TOPICS",
    "Alert",
    "AlertSource",
    "AlertState",
    "AuditEvent",
    "AuditOutcome",
    "ClaimCheck",
    "CleanReadingBatch",
    "ClockSource",
    "ContractError",
    "DeadLetter",
    "EdgePackage",
    "FlaggedSamples",
    "MeasurementRange",
    "QualityCode",
    "Quantity",
    "ReasonCode",
    "Samples",
    "SensorContext",
    "SensorDescription",
    "SensorStatus",
    "Severity",
    "Thresholds",
    "TopicSpec",
    "UnknownContextError",
    "Window",
]
