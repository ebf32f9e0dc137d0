"""Avro schemas of the internal topics, parsed once, and the model <-> bytes codecs.

Messages are schemaless Avro (no registry runs locally): the schema version is
in the topic name (`.v1`) and the `.avsc` files here are the contract.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, Final, TypeVar

import fastavro
from numpy.typing import NDArray
from pydantic import BaseModel

from contracts._avro_columns import ColumnarRecordWriter
from contracts.alert import Alert
from contracts.audit import AuditEvent
from contracts.deadletter import DeadLetter
from contracts.readings import CleanReadingBatch, FlaggedSamples

# Model -> its schema file. One schema per model; a new version gets a new file.
SCHEMA_FILES: Final[dict[type[BaseModel], str]] = {
    DeadLetter: "deadletter.v1.avsc",
    Alert: "alert.v1.avsc",
    CleanReadingBatch: "clean_reading_batch.v1.avsc",
    FlaggedSamples: "flagged_samples.v1.avsc",
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
    return encode_datum(type(model), model.model_dump(mode="python"))


def encode_datum(model: type[BaseModel], datum: Mapping[str, Any]) -> bytes:
    """Schemaless Avro bytes of a `model` record given as `model_dump(mode="python")` gives it (enum symbols as
    strings also do), not validated: for a hot path where building the model would cost more than the write."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed_schema(model), datum)
    return buffer.getvalue()


def decode(model: type[M], payload: bytes) -> M:
    """Read schemaless Avro bytes written by `encode` back into `model`."""
    record = fastavro.schemaless_reader(io.BytesIO(payload), parsed_schema(model), None)
    return model.model_validate(record)


@cache
def _columnar_writer(model: type[BaseModel], columns: frozenset[str]) -> ColumnarRecordWriter:
    return ColumnarRecordWriter(raw_schema(model), columns)


def encode_columns(model: type[BaseModel], fields: Mapping[str, Any], columns: Mapping[str, NDArray[Any]]) -> bytes:
    """Exactly the bytes `encode(instance)` produces for the `model` instance these values make up,
    faster for large arrays (a 1000-sample `CleanReadingBatch`: ~0.1 ms instead of ~1 ms).

    `columns` holds numeric array fields of `model` as 1-D numpy arrays (integers for long/int,
    floats for double/float, symbol indexes for an enum), encoded vectorised instead of item by
    item; `fields` holds all the other fields as `model_dump(mode="python")` gives them. Nothing is
    validated against `model` beyond the Avro types: validate upstream. A missing or extra name is a
    ValueError; a column of the wrong dtype a TypeError.
    """
    return _columnar_writer(model, frozenset(columns)).encode(fields, columns)
