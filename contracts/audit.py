"""Audit events on `audit.v1`: who talked to the REST broker, about what, when, and how it ended.

One event per request (SE-5, BR-9). Never the data itself: only its size and
where it was going, so the audit trail can be kept longer than the data.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from contracts._base import Contract, UtcDatetime


class AuditOutcome(StrEnum):
    ACCEPTED = "accepted"  # 2xx: the request did what it asked
    REJECTED = "rejected"  # 4xx: the client's request was refused (auth, limits, contract)
    FAILED = "failed"  # 5xx: the broker could not do it (e.g. Kafka did not acknowledge)


class AuditEvent(Contract):
    event_id: UUID
    at: UtcDatetime = Field(description="when the request was received")
    request_id: str = Field(description="also returned to the client in the X-Request-ID header")
    principal: str | None = Field(default=None, description="the token's principal; null when not authenticated")
    token_id: str | None = Field(default=None, description="public id of the token used (never the secret)")
    role: str | None = None
    client: str = Field(description="client address as seen by the broker")
    method: str
    route: str = Field(description="route template, e.g. /topic/{topic}")
    topic: str | None = Field(default=None, description="Kafka topic written or asked for, if any")
    status: int = Field(ge=100, le=599)
    outcome: AuditOutcome
    reason: str | None = Field(default=None, description="short machine-readable reason of a refusal")
    request_bytes: int = Field(ge=0)
    messages: int = Field(default=0, ge=0, description="Kafka messages written for this request")
    duration_ms: float = Field(ge=0, allow_inf_nan=False)
