"""Request envelope: id, head and body size caps (431, 413), time limit (504), metrics and the audit event.

Pure ASGI (no BaseHTTPMiddleware), so bodies stream through untouched and the
cap also holds for chunked requests without a Content-Length.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts import AuditEvent, AuditOutcome

log = logging.getLogger(__name__)

REQUESTS = Counter("vigil_rest_requests", "REST requests by route and status", ["route", "method", "status"])
REQUEST_BYTES = Counter("vigil_rest_request_bytes", "request body bytes received, by route", ["route"])
REQUEST_SECONDS = Histogram(
    "vigil_rest_request_seconds",
    "time to answer a request, by route",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class BodyTooLarge(HTTPException):
    """Raised from `receive` while the app reads the body: FastAPI's HTTPException handling turns it into 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body exceeds the limit of {limit} bytes")


def _json(status: int, payload: dict[str, Any]) -> list[Message]:
    data = json.dumps(payload).encode()
    return [
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        },
        {"type": "http.response.body", "body": data},
    ]


def head_too_large(size: int | None, limit: int) -> str:
    """The 431 answer's detail, the same from the middleware and from the HTTP layer (which has no size)."""
    what = f"the request line and headers ({size} bytes)" if size else "the request line and headers"
    return f"{what} exceed the broker's limit of {limit} bytes; send long values in the body"


def head_bytes(scope: Scope) -> int:
    """The size of the request line and headers as sent (give or take the HTTP version's few bytes)."""
    line = len(scope["method"]) + len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + 12
    return line + sum(len(name) + len(value) + 4 for name, value in scope.get("headers", []))


class Envelope:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        max_upload: int,
        max_head: int,
        timeout_s: float,
        audit: Callable[[AuditEvent], None],
    ) -> None:
        self.app, self.max_body, self.max_upload, self.max_head, self.timeout_s, self.audit = (
            app,
            max_body,
            max_upload,
            max_head,
            timeout_s,
            audit,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began, at = time.perf_counter(), datetime.now(UTC)
        request_id = secrets.token_hex(8)
        state: dict[str, Any] = scope.setdefault("state", {})
        state.update(request_id=request_id, received_at=at)
        headers = dict(scope.get("headers", []))
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/")
        limit = self.max_upload if multipart else self.max_body
        received = 0
        status = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        answering = asyncio.Event()  # set once the response has started: from then on the client sets the pace

        async def tracked_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                answering.set()
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        async def reply(code: int, error: str, detail: str) -> None:
            state["reason"] = error
            if status == 0:
                for message in _json(code, {"error": error, "detail": detail, "request_id": request_id}):
                    await tracked_send(message)

        declared = headers.get(b"content-length")
        try:
            # uvicorn's h11 refuses a head over the limit only while it arrives in pieces
            # (connectors/rest/_http11.py); one that came whole is refused here.
            if (head := head_bytes(scope)) > self.max_head:
                await reply(431, "head_too_large", head_too_large(head, self.max_head))
            elif declared is not None and declared.isdigit() and int(declared) > limit:
                await reply(413, "too_large", f"body of {int(declared)} bytes exceeds the limit of {limit}")
            else:
                await self._answered_in_time(self.app(scope, capped_receive, tracked_send), answering)
        except BodyTooLarge:
            await reply(413, "too_large", f"body exceeds the limit of {limit} bytes")
        except TimeoutError:
            await reply(504, "timeout", f"the request took longer than {self.timeout_s:g} s")
        finally:
            self._account(scope, state, at, began, status or 500, received)

    async def _answered_in_time(self, handling: Awaitable[None], answering: asyncio.Event) -> None:
        """Run the request; TimeoutError if its response has not started within the timeout.

        A streamed response (a claim of up to VIGIL_REST_MAX_UPLOAD_BYTES) then goes on at the client's pace:
        cut at the timeout, the client got a 200 and a truncated body.
        """
        task = asyncio.ensure_future(handling)
        started = asyncio.ensure_future(answering.wait())
        try:
            await asyncio.wait({task, started}, timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if not task.done() and not answering.is_set():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise TimeoutError
            await task
        finally:  # also when this request itself is cancelled (the client went away): nothing left running
            started.cancel()
            task.cancel()

    def _account(self, scope: Scope, state: dict[str, Any], at: datetime, began: float, status: int, size: int) -> None:
        route_obj = scope.get("route")
        route = getattr(route_obj, "path", None) or "unmatched"
        seconds = time.perf_counter() - began
        REQUESTS.labels(route, scope["method"], str(status)).inc()
        REQUEST_BYTES.labels(route).inc(size)
        REQUEST_SECONDS.labels(route).observe(seconds)
        if route in {"/metrics", "/health"}:
            return
        grant = state.get("grant")
        client = scope.get("client")
        outcome = (
            AuditOutcome.ACCEPTED if status < 400 else AuditOutcome.REJECTED if status < 500 else AuditOutcome.FAILED
        )
        event = AuditEvent(
            event_id=uuid.uuid4(),
            at=at,
            request_id=state["request_id"],
            principal=getattr(grant, "principal", None),
            token_id=getattr(grant, "token_id", None),
            role=str(grant.role) if grant is not None else None,
            client=client[0] if client else "unknown",
            method=scope["method"],
            route=route,
            topic=state.get("topic"),
            status=status,
            outcome=outcome,
            reason=state.get("reason") if status >= 400 else None,
            request_bytes=size,
            messages=int(state.get("messages", 0)),
            duration_ms=round(seconds * 1000, 3),
        )
        try:
            self.audit(event)
        except Exception:  # the audit trail must never break a request
            log.exception("could not queue the audit event of request %s", state["request_id"])
