"""The broker's ASGI app: routes, error format, request envelope, and the resources its lifespan owns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from minio import Minio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connectors.rest import errors, ingest, sensors
from connectors.rest.claims import ClaimStore
from connectors.rest.kafka import AsyncProducer, Outgoing
from connectors.rest.middleware import Envelope
from connectors.rest.ratelimit import RateLimiter
from connectors.rest.settings import RestSettings
from connectors.rest.tokens import TokenStore
from contracts import AuditEvent, EdgePackage
from contracts import avro as avro_codec
from infra.settings import InfraSettings

log = logging.getLogger(__name__)
AUDIT_TOPIC = "audit.v1"


async def _sweep_forever(store: ClaimStore, every_s: float) -> None:
    while True:
        try:
            await asyncio.to_thread(store.sweep)
        except Exception:  # a failed sweep is retried next time; it must not stop the server
            log.exception("claim sweep failed")
        await asyncio.sleep(every_s)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the EdgePackage contract the raw-body route refers to (it parses the body itself)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        package = EdgePackage.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(package.pop("$defs", {}))
        components["EdgePackage"] = package
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: RestSettings, infra: InfraSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = AsyncProducer(infra.kafka_bootstrap)
        missing = {*ingest.INGEST_TOPICS, AUDIT_TOPIC} - await asyncio.to_thread(producer.topics)
        if missing:
            raise RuntimeError(f"topics {sorted(missing)} do not exist at {infra.kafka_bootstrap}; run `make up`")
        app.state.producer = producer
        minio = Minio(
            infra.minio_endpoint,
            access_key=infra.minio_root_user,
            secret_key=infra.minio_root_password.get_secret_value(),
            secure=False,
        )
        app.state.claims = ClaimStore(minio, settings.blob_bucket)
        sweeper = asyncio.create_task(_sweep_forever(app.state.claims, settings.sweep_interval_s))
        for start in app.state.on_start:
            await start(app)
        log.info("REST broker ready on https://%s:%d", settings.host, settings.port)
        try:
            yield
        finally:
            sweeper.cancel()
            for stop in app.state.on_stop:
                await stop(app)
            left = await asyncio.to_thread(producer.close)
            if left:
                log.error("%d Kafka message(s) were still undelivered at shutdown", left)

    app = FastAPI(
        title="Vigil REST broker",
        version="1",
        description="HTTPS face of Vigil's Kafka topics for gateways, and the sensor metadata registry.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.tokens = TokenStore(settings.token_db)
    app.state.limiter = RateLimiter(settings.rate_per_s, settings.rate_burst)
    app.state.on_start, app.state.on_stop = [], []
    errors.install(app)
    app.include_router(ingest.router)
    sensors.install(app, infra, settings)

    @app.get(
        "/health", summary="Liveness, and whether the registry has read the metadata topic", include_in_schema=True
    )
    async def health() -> dict[str, Any]:
        catch_up: sensors.CatchUp = app.state.registry_catch_up
        registry = "ready" if catch_up.ready.is_set() else "catching_up"
        return {"status": "ok", "registry": registry}

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    def audit(event: AuditEvent) -> None:
        producer: AsyncProducer | None = getattr(app.state, "producer", None)
        if producer is not None:
            key = (event.principal or "anonymous").encode()
            producer.send_nowait(Outgoing(AUDIT_TOPIC, key, avro_codec.encode(event), []))

    app.add_middleware(
        Envelope,
        max_body=settings.max_body_bytes,
        max_upload=settings.max_upload_bytes,
        max_head=settings.max_head_bytes,
        timeout_s=settings.request_timeout_s,
        audit=audit,
    )
    return app
