"""Claim check (IN-3): large attachments go to MinIO; only a reference travels through Kafka.

Each object carries its lifecycle in its metadata: an expiry time, whether it is
deleted once redeemed, who uploaded it and its SHA-256. `GET /claims/{id}`
enforces both rules; `sweep()` (run by the server on a schedule, and by
`make rest-sweep`) deletes what expired and was never claimed.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from minio import Minio
from minio.error import S3Error

log = logging.getLogger(__name__)
PREFIX = "claims/"
CHUNK = 1024 * 1024
PART_SIZE = 16 * 1024 * 1024  # of put_object: a claim of up to 256 MiB goes in at most 16 parts


@dataclass(frozen=True)
class StoredClaim:
    claim_id: str
    uri: str
    sha256: str
    size: int
    media_type: str
    owner: str
    expires_at: datetime
    delete_after_claim: bool
    filename: str


class ClaimError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _md5() -> Any:
    return hashlib.md5(usedforsecurity=False)


def digest(stream: BinaryIO) -> tuple[str, str, int]:
    """(sha256 hex, the ETag MinIO must answer, size) of a seekable stream, read in chunks and rewound.

    put_object sends up to PART_SIZE in one part, whose ETag is the MD5 of the bytes; a larger object in parts of
    PART_SIZE, whose ETag is S3's "MD5 of the parts' MD5s, dash, part count". Comparing a multipart ETag with
    the whole file's MD5 refused every attachment over 5 MiB (minio's default part size) as store_corrupted.
    """
    sha, whole, size = hashlib.sha256(), _md5(), 0
    parts: list[bytes] = []
    part, in_part = _md5(), 0
    stream.seek(0)
    while chunk := stream.read(CHUNK):
        sha.update(chunk)
        whole.update(chunk)
        size += len(chunk)
        view = memoryview(chunk)
        while view:
            take = min(len(view), PART_SIZE - in_part)
            part.update(view[:take])
            in_part, view = in_part + take, view[take:]
            if in_part == PART_SIZE:
                parts.append(part.digest())
                part, in_part = _md5(), 0
    if in_part:
        parts.append(part.digest())
    stream.seek(0)
    etag = whole.hexdigest() if size <= PART_SIZE else f"{_md5_of(parts)}-{len(parts)}"
    return sha.hexdigest(), etag, size


def _md5_of(digests: list[bytes]) -> str:
    combined = _md5()
    combined.update(b"".join(digests))
    return str(combined.hexdigest())


class ClaimStore:
    def __init__(self, client: Minio, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    def put(
        self,
        stream: BinaryIO,
        *,
        media_type: str,
        owner: str,
        filename: str,
        ttl: timedelta,
        delete_after_claim: bool,
        expected_sha256: str | None,
    ) -> StoredClaim:
        sha256, etag, size = digest(stream)
        if expected_sha256 is not None and expected_sha256.lower() != sha256:
            raise ClaimError(422, "hash_mismatch", f"the file's SHA-256 is {sha256}, not the {expected_sha256} given")
        claim_id = str(uuid.uuid4())
        expires_at = (datetime.now(UTC) + ttl).replace(microsecond=0)
        key = PREFIX + claim_id
        result = self.client.put_object(
            self.bucket,
            key,
            stream,
            size,
            part_size=PART_SIZE,  # the part size `digest` computed the expected ETag with
            content_type=media_type,
            metadata={
                "sha256": sha256,
                "owner": owner,
                "expires-at": expires_at.isoformat(),
                "delete-after-claim": str(delete_after_claim).lower(),
                "filename": filename,
            },
        )
        # The ETag is computed by MinIO from what it stored (see `digest`): a check that nothing changed on the way.
        if result.etag and result.etag.strip('"') != etag:
            self.client.remove_object(self.bucket, key)
            raise ClaimError(502, "store_corrupted", "object storage stored different bytes than were received")
        return StoredClaim(
            claim_id,
            f"s3://{self.bucket}/{key}",
            sha256,
            size,
            media_type,
            owner,
            expires_at,
            delete_after_claim,
            filename,
        )

    def describe(self, claim_id: str) -> StoredClaim:
        try:
            uuid.UUID(claim_id)
        except ValueError as exc:
            raise ClaimError(404, "unknown_claim", f"no claim {claim_id!r}") from exc
        try:
            stat = self.client.stat_object(self.bucket, PREFIX + claim_id)
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject"}:
                raise ClaimError(
                    404, "unknown_claim", f"no claim {claim_id} (never stored, redeemed or expired)"
                ) from exc
            raise
        meta = {k.lower().removeprefix("x-amz-meta-"): v for k, v in (stat.metadata or {}).items()}
        return StoredClaim(
            claim_id,
            f"s3://{self.bucket}/{PREFIX}{claim_id}",
            meta.get("sha256", ""),
            stat.size or 0,
            stat.content_type or "application/octet-stream",
            meta.get("owner", ""),
            datetime.fromisoformat(meta["expires-at"]) if "expires-at" in meta else datetime.max.replace(tzinfo=UTC),
            meta.get("delete-after-claim", "false") == "true",
            meta.get("filename", claim_id),
        )

    def open(self, claim: StoredClaim) -> Iterator[bytes]:
        if claim.expires_at <= datetime.now(UTC):
            self.delete(claim.claim_id)
            raise ClaimError(410, "claim_expired", f"claim {claim.claim_id} expired at {claim.expires_at.isoformat()}")
        response = self.client.get_object(self.bucket, PREFIX + claim.claim_id)

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.stream(CHUNK)
            finally:
                response.close()
                response.release_conn()

        return chunks()

    def delete(self, claim_id: str) -> None:
        self.client.remove_object(self.bucket, PREFIX + claim_id)

    def sweep(self, now: datetime | None = None) -> list[str]:
        """Delete every claim past its expiry; the ids deleted."""
        now = now or datetime.now(UTC)
        deleted = []
        for item in self.client.list_objects(self.bucket, prefix=PREFIX):
            claim_id = (item.object_name or "").removeprefix(PREFIX)
            try:
                claim = self.describe(claim_id)
            except ClaimError:
                continue
            if claim.expires_at <= now:
                self.delete(claim_id)
                deleted.append(claim_id)
        if deleted:
            log.info("claim sweep deleted %d expired object(s)", len(deleted))
        return deleted
