"""`POST /topic/{topic}`, `GET /topics`, `GET /claims/{id}`: packages (or attachments) into Kafka.

A request is all or nothing as far as validation goes: every package of a batch
is checked (contract, then the token's gateway ids, then its size as a Kafka
message) before any is produced, and the client hears 2xx only once Kafka
acknowledged every message (acks=all).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import Histogram
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from connectors.rest.auth import authenticate, bearer
from connectors.rest.bodies import edge_package, parse_json
from connectors.rest.claims import ClaimError, ClaimStore
from connectors.rest.errors import ApiError
from connectors.rest.kafka import MAX_MESSAGE_BYTES, AsyncProducer, Outgoing, ProduceError, wire_size
from connectors.rest.settings import RestSettings
from connectors.rest.tokens import Grant, Role
from contracts import ClaimCheck, EdgePackage
from contracts.topics import BY_NAME

# Topics a client may write over REST, with the contract their messages must meet.
INGEST_TOPICS = {"edge.packages.v1": EdgePackage}
PRODUCE_SECONDS = Histogram(
    "vigil_rest_produce_seconds",
    "from produce to Kafka's acknowledgement of a request's messages",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
)
_PLACEHOLDER_CLAIM = {"uri": "s3://raw-blobs/pending", "sha256": "0" * 64, "bytes": 0, "media_type": "a/b"}

router = APIRouter()


async def grant_of(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Grant:
    return authenticate(request, credentials)


GrantDep = Annotated[Grant, Depends(grant_of)]


def _writable(request: Request, topic: str, grant: Grant) -> None:
    request.state.topic = topic
    if topic not in INGEST_TOPICS:
        raise ApiError(404, "unknown_topic", f"no ingest topic {topic!r}; GET /topics lists the ones you may write")
    if not grant.may_write(topic):
        raise ApiError(403, "topic_forbidden", f"token {grant.token_id} ({grant.principal}) may not write {topic}")


def _authorised(grant: Grant, packages: list[EdgePackage]) -> None:
    for package in packages:
        if not grant.may_send_for(package.gateway_id):
            raise ApiError(
                403,
                "gateway_forbidden",
                f"token {grant.token_id} ({grant.principal}) may not send for gateway {package.gateway_id!r};"
                " nothing was written",
                field="gateway_id",
            )


def provenance_headers(request: Request, grant: Grant) -> list[tuple[str, bytes]]:
    client = request.client.host if request.client else "unknown"
    return [
        ("vigil-principal", grant.principal.encode()),
        ("vigil-token-id", grant.token_id.encode()),
        ("vigil-client", client.encode()),
        ("vigil-received-at", request.state.received_at.isoformat().encode()),
        ("vigil-request-id", str(request.state.request_id).encode()),
    ]


def check_sizes(messages: list[Outgoing], what: str = "the package", batch: bool = False) -> None:
    """413 `oversized` unless every message fits MAX_MESSAGE_BYTES: checked for all before any is produced,
    because librdkafka refuses a larger one only when it is produced, after the ones before it.

    `what` names the message in the answer; in a `batch`, the index of the first one too large is added.
    """
    over = [(i, size) for i, m in enumerate(messages) if (size := wire_size(m)) > MAX_MESSAGE_BYTES]
    if over:
        index, size = over[0]
        what, field = (f"{what} [{index}]", f"[{index}]") if batch else (what, None)
        more = f" ({len(over)} of the request's messages are over it)" if len(over) > 1 else ""
        raise ApiError(
            413,
            "oversized",
            f"{what} is {size:,} bytes as a Kafka message (its JSON, key and provenance headers); the limit is "
            f"{MAX_MESSAGE_BYTES:,}{more}: split it into smaller ones; nothing was written",
            field=field,
        )


def _what_was_written(exc: ProduceError) -> str:
    if exc.queued is None:  # refused or unanswered after queueing: any of them may have been written
        return "; retry (duplicates are dropped by package id)"
    if exc.queued == 0:
        return "; nothing was written"
    return f"; the {exc.queued} message(s) before it were handed to Kafka: a retry is safe (duplicates are dropped)"


async def produce_acknowledged(
    request: Request, messages: list[Outgoing], what: str = "the package", batch: bool = False
) -> list[tuple[int, int]]:
    """Produce `messages` (each within MAX_MESSAGE_BYTES, else 413 and none is) and wait for Kafka's acks."""
    check_sizes(messages, what, batch)
    producer: AsyncProducer = request.app.state.producer
    settings: RestSettings = request.app.state.settings
    began = time.perf_counter()
    try:
        placed = await producer.send(messages, settings.produce_timeout_s)
    except ProduceError as exc:
        if exc.code == "MSG_SIZE_TOO_LARGE" and exc.queued is not None:  # librdkafka counted more than check_sizes
            raise ApiError(
                413, "oversized", f"{exc}: the limit is {MAX_MESSAGE_BYTES:,} bytes{_what_was_written(exc)}"
            ) from exc
        # Kafka unreachable or refusing (e.g. a topic limit below MAX_MESSAGE_BYTES): not the client's doing.
        raise ApiError(503, "kafka_unavailable", f"{exc}{_what_was_written(exc)}") from exc
    PRODUCE_SECONDS.observe(time.perf_counter() - began)
    request.state.messages = len(messages)
    return placed


REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/EdgePackage"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/EdgePackage"}, "minItems": 1},
                    ]
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["package", "file"],
                    "properties": {
                        "package": {"type": "string", "description": "the edge package as JSON, without payload"},
                        "file": {"type": "string", "format": "binary"},
                        "sha256": {"type": "string", "description": "expected SHA-256 (hex) of the file"},
                        "expires_in_days": {"type": "integer", "minimum": 1},
                        "delete_after_claim": {"type": "boolean", "default": True},
                    },
                }
            },
        },
    }
}


@router.post("/topic/{topic}", status_code=202, openapi_extra=REQUEST_BODY, summary="Send packages or an attachment")
async def post_topic(topic: str, request: Request, grant: GrantDep) -> dict[str, Any]:
    """One package, a JSON array of packages, or (multipart) a file with its package: the claim-check way."""
    _writable(request, topic, grant)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _post_attachment(topic, request, grant)
    raw = await request.body()
    document = parse_json(raw)
    batch = isinstance(document, list)
    items = document if batch else [document]
    settings: RestSettings = request.app.state.settings
    if batch and not items:
        raise ApiError(422, "empty_batch", "the JSON array holds no package")
    if len(items) > settings.max_batch:
        raise ApiError(413, "batch_too_large", f"{len(items)} packages in one request; at most {settings.max_batch}")
    packages = [edge_package(item, index if batch else None) for index, item in enumerate(items)]
    _authorised(grant, packages)
    headers = provenance_headers(request, grant)
    messages = [
        Outgoing(
            topic,
            str(p.sensor_id).encode(),
            # A single package travels byte for byte as received; batch items as their own JSON text.
            raw if not batch else json.dumps(item, separators=(",", ":"), allow_nan=True).encode(),
            headers,
        )
        for p, item in zip(packages, items, strict=True)
    ]
    placed = await produce_acknowledged(request, messages, "package" if batch else "the package", batch)
    return {
        "topic": topic,
        "accepted": len(messages),
        "request_id": request.state.request_id,
        "packages": [
            {"package_id": str(p.package_id), "partition": partition, "offset": offset}
            for p, (partition, offset) in zip(packages, placed, strict=True)
        ],
    }


async def _post_attachment(topic: str, request: Request, grant: Grant) -> dict[str, Any]:
    settings: RestSettings = request.app.state.settings
    form = await request.form(max_files=1, max_fields=8)
    upload, text = form.get("file"), form.get("package")
    if not isinstance(upload, UploadFile):
        raise ApiError(422, "missing_file", "a multipart request needs a file part named 'file'", field="file")
    if not isinstance(text, str):
        raise ApiError(422, "missing_package", "a multipart request needs a 'package' field (JSON)", field="package")
    document = parse_json(text, "package")
    if not isinstance(document, dict):
        raise ApiError(422, "malformed_json", "package: a JSON object is required", field="package")
    carried = [k for k in ("samples", "features", "claim") if k in document]
    if carried:
        raise ApiError(422, "payload_kind", f"package: the file is the payload; remove {carried}", field="package")
    checked = edge_package({**document, "claim": _PLACEHOLDER_CLAIM})
    _authorised(grant, [checked])
    days = _int_field(form.get("expires_in_days"), settings.claim_ttl_days, "expires_in_days")
    if not 1 <= days <= settings.claim_ttl_days:
        raise ApiError(
            422, "bad_expiry", f"expires_in_days must be 1..{settings.claim_ttl_days}", field="expires_in_days"
        )
    after = str(form.get("delete_after_claim", "true")).lower()
    if after not in {"true", "false"}:
        raise ApiError(422, "bad_flag", "delete_after_claim must be true or false", field="delete_after_claim")
    sha = form.get("sha256")
    store: ClaimStore = request.app.state.claims
    try:
        stored = await asyncio.to_thread(
            store.put,
            upload.file,
            media_type=upload.content_type or "application/octet-stream",
            owner=grant.principal,
            filename=upload.filename or "attachment",
            ttl=timedelta(days=days),
            delete_after_claim=after == "true",
            expected_sha256=sha if isinstance(sha, str) and sha else None,
        )
    except ClaimError as exc:
        raise ApiError(
            exc.status, exc.code, exc.detail, field="sha256" if exc.code == "hash_mismatch" else None
        ) from exc
    claim = ClaimCheck(uri=stored.uri, sha256=stored.sha256, bytes=stored.size, media_type=stored.media_type)
    package = checked.model_copy(update={"claim": claim})
    try:
        placed = await produce_acknowledged(
            request,
            [Outgoing(topic, str(package.sensor_id).encode(), package.to_wire(), provenance_headers(request, grant))],
        )
    except ApiError:
        await asyncio.to_thread(store.delete, stored.claim_id)  # no package refers to it: do not leave it behind
        raise
    return {
        "topic": topic,
        "accepted": 1,
        "request_id": request.state.request_id,
        "packages": [{"package_id": str(package.package_id), "partition": placed[0][0], "offset": placed[0][1]}],
        "claim": {
            "claim_id": stored.claim_id,
            "uri": stored.uri,
            "sha256": stored.sha256,
            "bytes": stored.size,
            "expires_at": stored.expires_at.isoformat(),
            "delete_after_claim": stored.delete_after_claim,
        },
    }


def _int_field(value: object, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(str(value))
    except ValueError as exc:
        raise ApiError(422, "bad_integer", f"{name} must be an integer", field=name) from exc


@router.get("/topics", summary="Topics this token may write")
async def get_topics(request: Request, grant: GrantDep) -> dict[str, Any]:
    return {
        "principal": grant.principal,
        "role": grant.role.value,
        "gateways": list(grant.gateways),
        "topics": [
            {"name": name, "description": BY_NAME[name].description, "contract": model.__name__}
            for name, model in INGEST_TOPICS.items()
            if grant.may_write(name)
        ],
    }


@router.get("/claims/{claim_id}", summary="Redeem a claim check", response_class=StreamingResponse)
async def get_claim(claim_id: str, request: Request, grant: GrantDep) -> StreamingResponse:
    """The attachment's bytes; deleted afterwards if it was stored with delete_after_claim."""
    store: ClaimStore = request.app.state.claims
    try:
        claim = await asyncio.to_thread(store.describe, claim_id)
        if grant.role is Role.GATEWAY and claim.owner != grant.principal:
            raise ApiError(403, "claim_forbidden", f"claim {claim_id} belongs to another principal")
        chunks = await asyncio.to_thread(store.open, claim)
    except ClaimError as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from exc
    after = BackgroundTask(asyncio.to_thread, store.delete, claim_id) if claim.delete_after_claim else None
    return StreamingResponse(
        chunks,
        media_type=claim.media_type,
        headers={
            "X-Vigil-SHA256": claim.sha256,
            "Content-Length": str(claim.size),
            "Content-Disposition": f'attachment; filename="{claim.filename.replace(chr(34), "")}"',
        },
        background=after,
    )
