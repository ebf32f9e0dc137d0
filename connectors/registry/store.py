"""The registry's current state: the latest description of every sensor, searchable.

The state mirrors a compacted topic (`edge.metadata.v1`, key = sensor UUID):
a put replaces the sensor's description, a delete leaves a tombstone so a
consumer (or the REST layer) can tell "deleted" from "never seen", and
`apply_record` replays topic records, a null value being a tombstone.
`version` grows on every change so derived views (the SPARQL graph) know
when to rebuild. A lock keeps readers from seeing a dict mid-update when the
service handles requests on several threads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pydantic import JsonValue

from connectors.registry.documents import accept, render
from contracts.metadata import SensorDescription


@dataclass(frozen=True)
class Entry:
    """A sensor's description and the properties from other vocabularies kept with it."""

    description: SensorDescription
    extras: dict[str, JsonValue] = field(default_factory=dict)

    @property
    def sensor_id(self) -> UUID:
        return self.description.sensor_id

    def document(self) -> dict[str, Any]:
        """The compacted JSON-LD document, as a GET returns it."""
        return render(self.description, self.extras)

    def search_text(self) -> tuple[str, ...]:
        """The casefolded fields the search box matches: machine id, site, quantity, labels in every language."""
        d, c = self.description, self.description.context
        fields = [c.machine_id, c.site, d.quantity.value, *d.label.values(), *c.machine_label.values()]
        return tuple(text.casefold() for text in fields)


@dataclass(frozen=True)
class SearchResult:
    """One page of matches; `truncated` and `warning` say when more matched than were returned (ST-5)."""

    items: tuple[Entry, ...]
    total: int
    truncated: bool
    warning: str | None = None


class Registry:
    """In-memory current state keyed by sensor UUID."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._lock = threading.Lock()
        self._entries: dict[UUID, Entry] = {}
        self._tombstones: set[UUID] = set()
        self._version = 0
        for entry in entries:
            self.put(entry.description, entry.extras)

    @property
    def version(self) -> int:
        """Grows by one on every change; equal versions mean equal contents."""
        return self._version

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, sensor_id: object) -> bool:
        return sensor_id in self._entries

    def put(self, description: SensorDescription, extras: Mapping[str, JsonValue] | None = None) -> Entry:
        """Store (or replace) a sensor's description; lifts a tombstone. Extras merge over `extensions`."""
        merged = {**description.extensions, **dict(extras or {})}
        entry = Entry(description, json.loads(json.dumps(merged)))  # deep copy: callers keep their dicts
        with self._lock:
            self._entries[description.sensor_id] = entry
            self._tombstones.discard(description.sensor_id)
            self._version += 1
        return entry

    def put_document(self, document: Mapping[str, Any]) -> Entry:
        """Accept a JSON-LD document (see `documents.accept`) and store it; raises `DocumentError`."""
        return self.put(*accept(document))

    def get(self, sensor_id: UUID) -> Entry | None:
        """The current entry, or None when unknown or deleted (see `is_deleted`)."""
        return self._entries.get(sensor_id)

    def delete(self, sensor_id: UUID) -> bool:
        """Remove a sensor and leave a tombstone; False when there was nothing to delete."""
        with self._lock:
            existed = self._entries.pop(sensor_id, None) is not None
            if existed:
                self._tombstones.add(sensor_id)
                self._version += 1
        return existed

    def is_deleted(self, sensor_id: UUID) -> bool:
        """True when the sensor was deleted and not put again since (HTTP 410 rather than 404)."""
        return sensor_id in self._tombstones

    def apply_record(self, key: bytes, value: bytes | None) -> Entry | None:
        """Replay one `edge.metadata.v1` record: a JSON-LD value is a put, a null value a tombstone."""
        sensor_id = UUID(key.decode())
        if value is None:
            self.delete(sensor_id)
            return None
        try:
            document = json.loads(value)
        except RecursionError as exc:  # the C scanner bounds its recursion: this unwinds cleanly
            raise ValueError("the record's JSON nests too deeply to read") from exc
        description, extras = accept(document)
        if description.sensor_id != sensor_id:  # checked before storing: a refused record changes nothing
            raise ValueError(f"record key {sensor_id} differs from the document's sensor_id {description.sensor_id}")
        return self.put(description, extras)

    def replay(self, records: Mapping[bytes, Sequence[bytes | None]]) -> list[tuple[bytes, int, Exception]]:
        """Apply a topic's records, each key's in topic order, ending in the state applying them one by one gives.

        A refused record changes nothing, so a key's state is set by its newest
        description that applies, and by a tombstone after it (which marks the
        sensor deleted, as `delete` does for a sensor that exists): each key's
        records are tried newest first and the older ones skipped. A metadata
        topic not compacted yet holds many descriptions per sensor (one per
        gateway start), and canonicalising each JSON-LD document is the slow
        part of a replay. Returns the records refused on the way: key, index in
        that key's records, and why.
        """
        refused: list[tuple[bytes, int, Exception]] = []
        for key, values in records.items():
            tombstoned = False
            for index in range(len(values) - 1, -1, -1):
                value = values[index]
                if value is None:
                    tombstoned = True
                    continue
                try:
                    self.apply_record(key, value)
                # Not a description (a test's probe, a bad key; DocumentError is a ValueError), or anything else
                # a record written by another producer provokes: one record must never stop the replay, or the
                # registry would never be ready and every lookup would answer 503.
                except Exception as exc:  # noqa: BLE001 - returned to the caller, which logs it
                    refused.append((key, index, exc))
                    continue
                if tombstoned:
                    self.apply_record(key, None)
                break
        return refused

    def entries(self) -> list[Entry]:
        """A snapshot of all entries in a stable order: site, machine id, sensor id."""
        with self._lock:
            snapshot = list(self._entries.values())
        return sorted(snapshot, key=_order)

    def search(self, q: str, limit: int = 100) -> SearchResult:
        """Sensors whose machine id, site, quantity or any label contains every word of `q`, ignoring case.

        An empty query matches every sensor. When more than `limit` match, the
        first `limit` (stable order) come back with `truncated=True` and a
        warning telling the user how many matched and how to narrow the query.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        words = q.casefold().split()
        matches = [e for e in self.entries() if all(any(w in t for t in e.search_text()) for w in words)]
        if len(matches) <= limit:
            return SearchResult(tuple(matches), len(matches), truncated=False)
        warning = (
            f"{len(matches)} sensors match {q!r}; showing the first {limit}. "
            "Narrow the query by adding words (all must match), e.g. a site, a machine id or a quantity."
        )
        return SearchResult(tuple(matches[:limit]), len(matches), truncated=True, warning=warning)


def _order(entry: Entry) -> tuple[str, str, str]:
    context = entry.description.context
    return context.site, context.machine_id, str(entry.sensor_id)
