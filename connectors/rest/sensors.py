"""The metadata registry over HTTP: `PUT/GET /sensors/{id}`, `GET /sensors?q=`, `GET|POST /sparql`.

The registry's state is the compacted topic `edge.metadata.v1`: a PUT is
acknowledged once Kafka has it, and a thread tails the topic from its start so
descriptions written by gateways directly (or by another broker) are served too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Annotated, Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import JSONResponse

from connectors.registry import DocumentError, Registry, SparqlError, accept, results
from connectors.registry.sparql import warm_up
from connectors.rest.bodies import parse_json
from connectors.rest.errors import ApiError
from connectors.rest.ingest import GrantDep, produce_acknowledged, provenance_headers
from connectors.rest.kafka import Outgoing
from connectors.rest.settings import RestSettings
from connectors.rest.tokens import Grant
from infra.settings import InfraSettings

log = logging.getLogger(__name__)
METADATA_TOPIC = "edge.metadata.v1"
JSONLD = "application/ld+json"
router = APIRouter()


@dataclass
class CatchUp:
    """The registry's start-up replay of the metadata topic: until `ready`, lookups answer 503, not a wrong 404."""

    ready: threading.Event = field(default_factory=threading.Event)
    records_at_start: int = 0  # in the topic when the broker started (before compaction removed any, at most)
    records_read: int = 0


def _tail(registry: Registry, bootstrap: str, stop: threading.Event, catch_up: CatchUp) -> None:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"vigil-rest-registry-{uuid.uuid4()}", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(METADATA_TOPIC, timeout=10).topics[METADATA_TOPIC].partitions
        marks = {p: consumer.get_watermark_offsets(TopicPartition(METADATA_TOPIC, p), timeout=10) for p in partitions}
        ends = {p: high for p, (_, high) in marks.items()}
        catch_up.records_at_start = sum(high - low for low, high in marks.values())
        consumer.assign([TopicPartition(METADATA_TOPIC, p, OFFSET_BEGINNING) for p in partitions])
        caught_up: set[int] = {p for p, end in ends.items() if end == 0}
        # Until every partition reached its end at start, records are only collected per key: the registry then
        # applies the last one that applies of each (Registry.replay), the same state as applying them all.
        pending: dict[bytes, list[bytes | None]] = defaultdict(list)
        where: dict[bytes, list[tuple[int, int]]] = defaultdict(list)  # (partition, offset) of each pending record
        began = time.monotonic()
        while not stop.is_set():
            if not catch_up.ready.is_set() and len(caught_up) == len(ends):
                for key, index, exc in registry.replay(pending):
                    _skipped(key, *where[key][index], exc)
                log.info(
                    "registry caught up with %s: %d sensors from %d records in %.1f s",
                    METADATA_TOPIC,
                    len(registry),
                    catch_up.records_read,
                    time.monotonic() - began,
                )
                pending.clear()
                where.clear()
                catch_up.ready.set()
                try:  # now rather than in the first /sparql request, which could take longer than a request may
                    warm_up(registry)
                except Exception:  # a query would meet the same failure and report it; the tail goes on
                    log.exception("could not build the SPARQL graph of the registry")
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            if not catch_up.ready.is_set():
                pending[message.key() or b""].append(message.value())
                where[message.key() or b""].append((partition, offset))
                catch_up.records_read += 1
                if offset + 1 >= ends.get(partition, 0):
                    caught_up.add(partition)
                continue
            try:
                registry.apply_record(message.key() or b"", message.value())
            # Not a description (e.g. a test's probe), or anything else one record provokes: skip it and say so;
            # the thread must outlive any record, or the registry silently stops following the topic.
            except Exception as exc:  # noqa: BLE001 - logged by _skipped
                _skipped(message.key() or b"", partition, offset, exc)
    finally:
        consumer.close()


def _skipped(key: bytes, partition: int, offset: int, exc: Exception) -> None:
    sensor, reason = key.decode(errors="replace"), f"{type(exc).__name__}: {exc}"
    log.warning("skipped %s[%d]@%d (sensor key %r): %s", METADATA_TOPIC, partition, offset, sensor, reason)


def install(app: FastAPI, infra: InfraSettings, settings: RestSettings) -> None:
    registry = Registry()
    catch_up = CatchUp()
    app.state.registry, app.state.registry_catch_up = registry, catch_up
    stop = threading.Event()

    async def start(app: FastAPI) -> None:
        thread = threading.Thread(
            target=_tail, args=(registry, infra.kafka_bootstrap, stop, catch_up), name="registry-tail", daemon=True
        )
        thread.start()
        # Report ready once the registry holds what the topic held at start, or after a bounded wait: ingest
        # does not need the registry, and its lookups answer 503 until it is ready (`_registry`).
        if not await asyncio.to_thread(catch_up.ready.wait, settings.registry_wait_s):
            log.warning(
                "the registry has read %d of %d records of %s after %.0f s; its lookups answer 503 until it is done",
                catch_up.records_read,
                catch_up.records_at_start,
                METADATA_TOPIC,
                settings.registry_wait_s,
            )

    async def stop_tail(app: FastAPI) -> None:
        stop.set()

    app.state.on_start.append(start)
    app.state.on_stop.append(stop_tail)
    app.include_router(router)


def _registry(request: Request) -> Registry:
    """The registry, once it holds what the metadata topic held at start: a lookup before would miss sensors."""
    catch_up: CatchUp = request.app.state.registry_catch_up
    if not catch_up.ready.is_set():
        raise ApiError(
            503,
            "registry_catching_up",
            f"the registry is still reading {METADATA_TOPIC} ({catch_up.records_read} of about "
            f"{catch_up.records_at_start} records); retry shortly",
            headers={"Retry-After": "5"},
        )
    registry: Registry = request.app.state.registry
    return registry


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError as exc:
        raise ApiError(404, "unknown_sensor", f"{text!r} is not a sensor UUID") from exc


def _may_register(grant: Grant) -> None:
    if not grant.may_write(METADATA_TOPIC):
        raise ApiError(
            403, "topic_forbidden", f"token {grant.token_id} ({grant.principal}) may not write sensor metadata"
        )


# The route reads its body itself (strict UTF-8, bounded nesting: `parse_json`), so the spec is declared here.
PUT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object", "description": "a JSON-LD sensor description"}}},
    }
}


@router.put("/sensors/{sensor_id}", openapi_extra=PUT_BODY, summary="Register or replace a sensor's metadata (JSON-LD)")
async def put_sensor(sensor_id: str, request: Request, grant: GrantDep) -> JSONResponse:
    request.state.topic = METADATA_TOPIC
    _may_register(grant)
    wanted = _uuid(sensor_id)
    document = parse_json(await request.body())
    if not isinstance(document, dict):
        raise ApiError(422, "malformed_json", "the body: a sensor description is a JSON object")
    try:
        description, extras = accept(document)
    except DocumentError as exc:
        raise ApiError(422, exc.reason, str(exc.detail), field=exc.field) from exc
    if description.sensor_id != wanted:
        raise ApiError(
            422, "id_mismatch", f"the URL names {wanted}, the document {description.sensor_id}", field="sensor_id"
        )
    await produce_acknowledged(
        request,
        [Outgoing(METADATA_TOPIC, str(wanted).encode(), description.to_wire(), provenance_headers(request, grant))],
        "the description",
    )
    registry: Registry = request.app.state.registry
    entry = registry.put(description, extras)
    return JSONResponse(entry.document(), media_type=JSONLD, headers={"Location": f"/sensors/{wanted}"})


@router.get("/sensors/{sensor_id}", summary="A sensor's current metadata, compacted to the Vigil context")
async def get_sensor(sensor_id: str, request: Request, grant: GrantDep) -> JSONResponse:
    registry = _registry(request)
    wanted = _uuid(sensor_id)
    entry = registry.get(wanted)
    if entry is None:
        gone = registry.is_deleted(wanted)
        raise ApiError(
            410 if gone else 404, "sensor_retired" if gone else "unknown_sensor", f"no current metadata for {wanted}"
        )
    return JSONResponse(entry.document(), media_type=JSONLD)


@router.get("/sensors", summary="Search sensors by machine, site, quantity or label")
async def search_sensors(
    request: Request,
    grant: GrantDep,
    q: Annotated[str, Query(max_length=200, description="words that must all match")] = "",
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> dict[str, Any]:
    settings: RestSettings = request.app.state.settings
    registry = _registry(request)
    found = registry.search(q, limit or settings.search_limit)
    return {
        "query": q,
        "total": found.total,
        "truncated": found.truncated,
        "warning": found.warning,
        "items": [entry.document() for entry in found.items],
    }


async def _sparql(request: Request, text: str) -> dict[str, Any]:
    registry = _registry(request)
    try:
        # The W3C SPARQL 1.1 JSON results shape (bindings for SELECT, a boolean for ASK), so SPARQL clients read it.
        return await asyncio.to_thread(results, registry, text)
    except SparqlError as exc:  # malformed, not allowed, or failed while running (e.g. a bad regex)
        raise ApiError(400, "bad_sparql", str(exc), field="query") from exc


@router.get("/sparql", summary="SPARQL SELECT or ASK over the current metadata")
async def sparql_get(
    request: Request,
    grant: GrantDep,
    query: Annotated[str, Query(min_length=1, max_length=4000, description="longer queries: POST /sparql")],
) -> dict[str, Any]:
    return await _sparql(request, query)


@router.post("/sparql", summary="SPARQL SELECT or ASK over the current metadata (form field `query`)")
async def sparql_post(
    request: Request, grant: GrantDep, query: Annotated[str, Form(min_length=1, max_length=20_000)]
) -> dict[str, Any]:
    return await _sparql(request, query)
