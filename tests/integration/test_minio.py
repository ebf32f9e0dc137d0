"""MinIO answers with the declared buckets and stores bytes faithfully."""

from __future__ import annotations

import hashlib
import io
import os
import uuid

import pytest

from infra import minio
from infra.settings import InfraSettings

pytestmark = pytest.mark.integration


def test_buckets_exist(platform: InfraSettings) -> None:
    client = minio.client(platform)
    assert {b.name for b in client.list_buckets()} >= set(platform.minio_buckets)


def test_put_get(platform: InfraSettings) -> None:
    client = minio.client(platform)
    payload = os.urandom(3 * 1024 * 1024 + 17)  # crosses a multipart boundary of some clients
    key = f"_tests/{uuid.uuid4()}.bin"
    client.put_object("raw-blobs", key, io.BytesIO(payload), len(payload))
    try:
        response = client.get_object("raw-blobs", key)
        try:
            got = response.read()
        finally:
            response.close()
            response.release_conn()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(payload).hexdigest()
    finally:
        client.remove_object("raw-blobs", key)
