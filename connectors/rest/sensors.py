"""The metadata registry over HTTP: `PUT/GET /sensors/{id}`, `GET /sensors?q=`, `GET|POST /sparql`.

The registry's state is the compacted topic `edge.metadata.v1`: a PUT is
acknowledged once Kafka has it, and a thread tails the topic from its start so
descriptions written by gateways directly (or by another broker) are served too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from typing import Annotated, Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from fastapi import APIRouter, Body, FastAPI, Form, Query, Request
from fastapi.responses import JSONResponse

from connectors.registry import DocumentError, Registry, SparqlError, accept, query
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


def _tail(registry: Registry, bootstrap: str, stop: threading.Event, ready: threading.Event) -> None:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"vigil-rest-registry-{uuid.uuid4()}", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(METADATA_TOPIC, timeout=10).topics[METADATA_TOPIC].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(METADATA_TOPIC, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(METADATA_TOPIC, p, OFFSET_BEGINNING) for p in partitions])
        caught_up: set[int] = {p for p, end in ends.items() if end == 0}
        while not stop.is_set():
            message = consumer.poll(0.5)
            if len(caught_up) == len(ends):
                ready.set()
            if message is None or message.error() is not None:
                continue
            try:
                registry.apply_record(message.key() or b"", message.value())
            except (ValueError, DocumentError) as exc:  # not a description (e.g. a test's probe): skip, say so
                log.warning("skipped %s[%d]@%d: %s", METADATA_TOPIC, message.partition(), message.offset(), exc)
            if (message.offset() or 0) + 1 >= ends.get(message.partition() or 0, 0):
                caught_up.add(message.partition() or 0)
    finally:
        consumer.close()


def install(app: FastAPI, infra: InfraSettings) -> None:
    registry = Registry()
    app.state.registry = registry
    stop, ready = threading.Event(), threading.Event()

    async def start(app: FastAPI) -> None:
        thread = threading.Thread(
            target=_tail, args=(registry, infra.kafka_bootstrap, stop, ready), name="registry-tail", daemon=True
        )
        thread.start()
        # Serve lookups only once the registry holds what the topic held at start.
        if not await asyncio.to_thread(ready.wait, 60):
            log.warning("the registry had not caught up with %s after 60 s; serving what it has", METADATA_TOPIC)

    async def stop_tail(app: FastAPI) -> None:
        stop.set()

    app.state.on_start.append(start)
    app.state.on_stop.append(stop_tail)
    app.include_router(router)


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


@router.put("/sensors/{sensor_id}", summary="Register or replace a sensor's metadata (JSON-LD)")
async def put_sensor(
    sensor_id: str, request: Request, grant: GrantDep, document: Annotated[dict[str, Any], Body()]
) -> JSONResponse:
    request.state.topic = METADATA_TOPIC
    _may_register(grant)
    wanted = _uuid(sensor_id)
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
    )
    registry: Registry = request.app.state.registry
    entry = registry.put(description, extras)
    return JSONResponse(entry.document(), media_type=JSONLD, headers={"Location": f"/sensors/{wanted}"})


@router.get("/sensors/{sensor_id}", summary="A sensor's current metadata, compacted to the Vigil context")
async def get_sensor(sensor_id: str, request: Request, grant: GrantDep) -> JSONResponse:
    registry: Registry = request.app.state.registry
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
    registry: Registry = request.app.state.registry
    found = registry.search(q, limit or settings.search_limit)
    return {
        "query": q,
        "total": found.total,
        "truncated": found.truncated,
        "warning": found.warning,
        "items": [entry.document() for entry in found.items],
    }


async def _sparql(request: Request, text: str) -> dict[str, Any]:
    registry: Registry = request.app.state.registry
    try:
        variables, rows = await asyncio.to_thread(query, registry, text)
    except SparqlError as exc:
        raise ApiError(400, "bad_sparql", str(exc), field="query") from exc
    # The W3C SPARQL 1.1 JSON results shape, so existing SPARQL clients read it.
    bindings = [
        {v: {"value": value} for v, value in zip(variables, row, strict=True) if value is not None} for row in rows
    ]
    return {"head": {"vars": variables}, "results": {"bindings": bindings}}


@router.get("/sparql", summary="SPARQL SELECT over the current metadata")
async def sparql_get(
    request: Request,
    grant: GrantDep,
    query: Annotated[str, Query(min_length=1, max_length=4000, description="longer queries: POST /sparql")],
) -> dict[str, Any]:
    return await _sparql(request, query)


@router.post("/sparql", summary="SPARQL SELECT over the current metadata (form field `query`)")
async def sparql_post(
    request: Request, grant: GrantDep, query: Annotated[str, Form(min_length=1, max_length=20_000)]
) -> dict[str, Any]:
    return await _sparql(request, query)
