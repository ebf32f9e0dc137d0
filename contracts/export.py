"""Export JSON Schemas of the gateway-facing contracts: `python -m contracts.export`.

The files in `contracts/jsonschema/` are generated; a unit test fails when they
are stale, so a model change and its published schema always land together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from pydantic import BaseModel

from contracts.alert import Alert
from contracts.audit import AuditEvent
from contracts.deadletter import DeadLetter
from contracts.metadata import SensorDescription
from contracts.package import EdgePackage
from contracts.readings import CleanReadingBatch, FlaggedSamples

SCHEMA_DIR: Final = Path(__file__).resolve().parent / "jsonschema"
EXPORTED: Final[dict[str, type[BaseModel]]] = {
    "edge_package.v1.schema.json": EdgePackage,
    "sensor_description.v1.schema.json": SensorDescription,
    "alert.v1.schema.json": Alert,
    "dead_letter.v1.schema.json": DeadLetter,
    "clean_reading_batch.v1.schema.json": CleanReadingBatch,
    "flagged_samples.v1.schema.json": FlaggedSamples,
    "audit_event.v1.schema.json": AuditEvent,
}


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, model in EXPORTED.items():
        (SCHEMA_DIR / name).write_text(render(model), encoding="utf-8")
        print(f"wrote {SCHEMA_DIR / name}")


if __name__ == "__main__":
    main()
