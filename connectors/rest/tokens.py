"""API tokens: issued, listed and revoked by an administrator; only their hash is stored.

A token reads `vgl_<id>_<secret>`: the id (public, shown in listings and the
audit log) finds the row, the secret is checked against its SHA-256. The
secret is 256 random bits, so a fast hash is enough (no password stretching:
nothing to brute-force); the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

PREFIX = "vgl"


class Role(StrEnum):
    GATEWAY = "gateway"  # writes packages of its own gateway ids to its topics
    APP = "app"  # an application: redeems claims, reads the registry
    ADMIN = "admin"  # everything, any gateway id


@dataclass(frozen=True)
class Grant:
    """What a valid token allows."""

    token_id: str
    principal: str
    role: Role
    topics: tuple[str, ...]
    gateways: tuple[str, ...]  # gateway ids it may write packages for; ("*",) = any
    created_at: str
    revoked_at: str | None = None
    note: str = ""

    def may_write(self, topic: str) -> bool:
        return topic in self.topics or "*" in self.topics

    def may_send_for(self, gateway_id: str) -> bool:
        return self.role is Role.ADMIN or "*" in self.gateways or gateway_id in self.gateways


class TokenError(ValueError):
    """A token request that cannot be honoured (unknown id, bad arguments)."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """Tokens in a small SQLite file (`VIGIL_REST_TOKEN_DB`), shared by the CLI and the server."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL,"
                " principal TEXT NOT NULL, role TEXT NOT NULL, topics TEXT NOT NULL, gateways TEXT NOT NULL,"
                " created_at TEXT NOT NULL, revoked_at TEXT, note TEXT NOT NULL DEFAULT '')"
            )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            yield db

    def issue(
        self, principal: str, role: Role, topics: list[str], gateways: list[str], note: str = ""
    ) -> tuple[Grant, str]:
        """A new token; the plain token is returned once and never stored."""
        if not principal:
            raise TokenError("a token needs a principal (the gateway or user it is for)")
        if role is Role.GATEWAY and not gateways:
            raise TokenError("a gateway token needs at least one --gateway id it may send for")
        token_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        grant = Grant(
            token_id, principal, role, tuple(topics), tuple(gateways), datetime.now(UTC).isoformat(), None, note
        )
        with self._db() as db:
            db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (
                    token_id,
                    _hash(secret),
                    principal,
                    role.value,
                    json.dumps(topics),
                    json.dumps(gateways),
                    grant.created_at,
                    note,
                ),
            )
        return grant, f"{PREFIX}_{token_id}_{secret}"

    def verify(self, token: str) -> Grant | None:
        """The grant of a valid, unrevoked token, else None."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        row = self._row(parts[1])
        if row is None or row[1] is None:
            return None
        grant, digest = row
        if grant.revoked_at is not None or not hmac.compare_digest(digest, _hash(parts[2])):
            return None
        return grant

    def _row(self, token_id: str) -> tuple[Grant, str] | None:
        with self._db() as db:
            row = db.execute(
                "SELECT id, principal, role, topics, gateways, created_at, revoked_at, note, secret_sha256"
                " FROM tokens WHERE id = ?",
                (token_id,),
            ).fetchone()
        if row is None:
            return None
        return _grant(row[:8]), row[8]

    def list(self) -> list[Grant]:
        with self._db() as db:
            rows = db.execute(
                "SELECT id, principal, role, topics, gateways, created_at, revoked_at, note FROM tokens"
                " ORDER BY created_at"
            ).fetchall()
        return [_grant(row) for row in rows]

    def revoke(self, token_id: str) -> Grant:
        with self._db() as db:
            done = db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (datetime.now(UTC).isoformat(), token_id),
            )
        found = self._row(token_id)
        if found is None:
            raise TokenError(f"no token with id {token_id!r} (`make token ARGS=list` lists them)")
        if done.rowcount == 0:
            raise TokenError(f"token {token_id} was already revoked at {found[0].revoked_at}")
        return found[0]


def _grant(row: tuple[str, ...]) -> Grant:
    token_id, principal, role, topics, gateways, created_at, revoked_at, note = row
    return Grant(
        token_id,
        principal,
        Role(role),
        tuple(json.loads(topics)),
        tuple(json.loads(gateways)),
        created_at,
        revoked_at,
        note,
    )
