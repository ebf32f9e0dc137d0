"""Bearer-token authentication and the per-token rate limit, as a FastAPI dependency."""

from __future__ import annotations

import time

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from connectors.rest.errors import ApiError
from connectors.rest.ratelimit import RateLimiter
from connectors.rest.tokens import Grant, TokenStore

bearer = HTTPBearer(auto_error=False, description="an API token from `make token ARGS='issue ...'`")


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Grant:
    tokens: TokenStore = request.app.state.tokens
    limiter: RateLimiter = request.app.state.limiter
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401, "unauthenticated", "send 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"}
        )
    grant = tokens.verify(credentials.credentials)
    if grant is None:
        raise ApiError(
            401,
            "invalid_token",
            "the token is unknown or revoked",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    request.state.grant = grant
    wait = limiter.take(grant.token_id, time.monotonic())
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"more than {limiter.rate:g} requests/s (burst {limiter.burst}) on this token; retry in {wait:.2f} s",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )
    return grant
