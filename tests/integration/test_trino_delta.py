"""Trino's `vigil` catalog creates, writes and reads Delta tables that live in MinIO."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import trino

from infra import minio
from infra.settings import InfraSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def cursor(platform: InfraSettings) -> Iterator[trino.dbapi.Cursor]:
    connection = trino.dbapi.connect(  # type: ignore[no-untyped-call]
        host=platform.host, port=platform.trino_port, user="vigil-tests", catalog=platform.trino_catalog
    )
    try:
        yield connection.cursor()
    finally:
        connection.close()


def test_schemas_exist(cursor: trino.dbapi.Cursor, platform: InfraSettings) -> None:
    cursor.execute("SHOW SCHEMAS")  # type: ignore[no-untyped-call]
    assert {row[0] for row in cursor.fetchall()} >= set(platform.trino_schemas)


def test_create_write_read_delta_table(cursor: trino.dbapi.Cursor, platform: InfraSettings) -> None:
    table = f"bronze.it_{uuid.uuid4().hex[:12]}"
    cursor.execute(f"CREATE TABLE {table} (sensor_id varchar, t timestamp(3) with time zone, v double)")  # type: ignore[no-untyped-call]
    cursor.fetchall()
    try:
        cursor.execute(  # type: ignore[no-untyped-call]
            f"INSERT INTO {table} VALUES "
            "('a', TIMESTAMP '2026-11-23 08:00:00.001 UTC', 1.5), "
            "('b', TIMESTAMP '2026-11-23 08:00:00.002 UTC', -2.25)"
        )
        assert cursor.fetchall() == [[2]]
        cursor.execute(f"SELECT sensor_id, v, to_unixtime(t) FROM {table} ORDER BY sensor_id")  # type: ignore[no-untyped-call]
        rows = cursor.fetchall()
        assert [(r[0], r[1]) for r in rows] == [("a", 1.5), ("b", -2.25)]
        assert rows[1][2] - rows[0][2] == pytest.approx(1e-3, abs=1e-5)  # milliseconds survive (Delta timestamp)

        # The table is Delta on MinIO: its transaction log is in the lake bucket.
        objects = [o.object_name for o in minio.client(platform).list_objects("lake", prefix="bronze/", recursive=True)]
        name = table.split(".")[1]
        assert any("/_delta_log/00000000000000000000.json" in o and name in o for o in objects), objects[:20]
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")  # type: ignore[no-untyped-call]
        cursor.fetchall()
