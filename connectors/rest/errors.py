"""Every 4xx/5xx of the broker is JSON: a stable code, a sentence, the field when one is at fault.

Nothing else leaves the process: an unexpected exception is logged with its
traceback server-side and the client gets `internal_error` and the request id.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A refusal the client can act on."""

    def __init__(
        self, status: int, code: str, detail: str, *, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.field, self.headers = status, code, detail, field, headers or {}


def body(request: Request | None, code: str, detail: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"error": code, "detail": detail}
    if field is not None:
        out["field"] = field
    out.update(extra)
    if request is not None:
        out["request_id"] = getattr(request.state, "request_id", None)
        request.state.reason = code
    return out


def loc_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as a dotted path, list indexes in brackets: `[2].samples.v`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(body(request, exc.code, exc.detail, exc.field), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
        loc = tuple(p for p in first.get("loc", ()) if p not in {"body", "query", "path", "header"})
        where = loc_path(loc) or None
        detail = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        return JSONResponse(body(request, str(first.get("type", "invalid")), detail, where), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}
        return JSONResponse(
            body(request, codes.get(exc.status_code, "http_error"), str(exc.detail)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(body(request, "internal_error", "the broker failed; the request id is in its log"), 500)
