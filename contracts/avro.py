"""Avro schemas of the internal topics, parsed once, and the model <-> bytes codecs.

Messages are schemaless Avro (no registry runs locally): the schema version is
in the topic name (`.v1`) and the `.avsc` files here are the contract.
"""

from __future__ import annotations

import io
import json
from functools import cache
from importlib import resources
from typing import Any, Final, TypeVar

import fastavro
from pydantic import BaseModel

from contracts.alert import Alert
from contracts.audit import AuditEvent
from contracts.deadletter import DeadLetter
from contracts.readings import CleanReadingBatch

# Model -> its schema file. One schema per model; a new version gets a new file.
SCHEMA_FILES: Final[dict[type[BaseModel], str]] = {
    DeadLetter: "deadletter.v1.avsc",
    Alert: "alert.v1.avsc",
    CleanReadingBatch: "clean_reading_batch.v1.avsc",
    AuditEvent: "audit_event.v1.avsc",
}

M = TypeVar("M", bound=BaseModel)


@cache
def raw_schema(model: type[BaseModel]) -> dict[str, Any]:
    text = resources.files("contracts").joinpath("avro", SCHEMA_FILES[model]).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def parsed_schema(model: type[BaseModel]) -> Any:
    """The fastavro-parsed schema of `model`, parsed once per process."""
    return fastavro.parse_schema(raw_schema(model))


def encode(model: BaseModel) -> bytes:
    """Schemaless Avro bytes of `model`."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed_schema(type(model)), model.model_dump(mode="python"))
    return buffer.getvalue()


def decode(model: type[M], payload: bytes) -> M:
    """Read schemaless Avro bytes written by `encode` back into `model`."""
    record = fastavro.schemaless_reader(io.BytesIO(payload), parsed_schema(model), None)
    return model.model_validate(record)
