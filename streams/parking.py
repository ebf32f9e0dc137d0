"""Parking: packages whose sensor has no metadata yet, and how they wait in the `parked-packages` table.

Pure: the agents in `streams/app.py` move these values between Kafka and the table.

A parked copy on `edge.parked.v1` carries the original package's position in headers, so provenance
stays the original's. While it waits, each package is one table entry keyed by sensor and source
position: a replayed parked message overwrites its own entry, and no entry outgrows a Kafka message
however many packages a sensor has waiting (a list per sensor did, and crashed the worker).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from streams.pipeline import Source

HEADER_PARTITION: Final = "vigil-source-partition"
HEADER_OFFSET: Final = "vigil-source-offset"
HEADER_TIME: Final = "vigil-source-time-ms"


@dataclass(frozen=True, slots=True)
class Parked:
    """A package waiting for its sensor's metadata: its table key, original bytes and original source."""

    key: str
    original: bytes
    source: Source


def headers(source: Source) -> dict[str, bytes]:
    """The headers of a parked copy: where the original was read."""
    return {
        HEADER_PARTITION: str(source.partition).encode(),
        HEADER_OFFSET: str(source.offset).encode(),
        HEADER_TIME: str(_ms(source.append_time)).encode(),
    }


def source_of(raw_headers: Any, topic: str) -> Source:
    """The original's source from a parked copy's headers; KeyError or ValueError if they are not ours.

    Kafka delivers headers as a list of (key, bytes) pairs; Faust's test channel keeps the dict it was given.
    """
    pairs: list[tuple[str, Any]] = list(raw_headers.items()) if isinstance(raw_headers, dict) else list(raw_headers)
    found = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in pairs}
    return Source(
        topic,
        int(found[HEADER_PARTITION]),
        int(found[HEADER_OFFSET]),
        datetime.fromtimestamp(int(found[HEADER_TIME]) / 1000, tz=UTC),
    )


def entry(sensor_key: str, original: bytes, source: Source) -> tuple[str, dict[str, Any]]:
    """The table key and value of a waiting package (base64: a value's size is bounded, 4/3 of the original)."""
    return f"{sensor_key}/{source.partition}/{source.offset}", {
        "original_b64": base64.b64encode(original).decode(),
        "partition": source.partition,
        "offset": source.offset,
        "time_ms": _ms(source.append_time),
    }


def waiting(items: Iterable[tuple[Any, Any]], sensor_key: str, topic: str) -> list[Parked]:
    """The sensor's waiting packages among the table's `items`, in their original order."""
    prefix = f"{sensor_key}/"
    found = [
        Parked(key, base64.b64decode(value["original_b64"]), _source(value, topic))
        for key, value in items
        if isinstance(key, str) and key.startswith(prefix) and isinstance(value, Mapping)
    ]
    return sorted(found, key=lambda p: (p.source.partition, p.source.offset))


def legacy(value: Any, sensor_key: str, topic: str) -> list[Parked]:
    """Packages of a list that workers before 2026-11-30 kept under the bare sensor key (all share that key)."""
    if not isinstance(value, list):
        return []
    return [Parked(sensor_key, item["value"].encode(), _source(item, topic)) for item in value]


def _source(value: Mapping[str, Any], topic: str) -> Source:
    return Source(topic, value["partition"], value["offset"], datetime.fromtimestamp(value["time_ms"] / 1000, tz=UTC))


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)
