"""Registering a lake table in Trino's `vigil` catalog: idempotent at one root, re-pointed when the root moves."""

from __future__ import annotations

import logging
import uuid
from datetime import date

import pytest
from pyspark.sql import SparkSession

from infra.settings import InfraSettings
from jobs.lake import catalog, sinks
from jobs.lake.tables import Table, trino_root

pytestmark = pytest.mark.integration


def ids(platform: InfraSettings, table: Table) -> list[int]:
    with catalog.connect(platform) as connection:
        cursor = connection.cursor()
        cursor.execute(f"SELECT id FROM {table.qualified} ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def unregister(platform: InfraSettings, table: Table) -> None:
    with catalog.connect(platform) as connection:
        cursor = connection.cursor()
        if table.name in catalog.registered(cursor, table.schema):
            cursor.execute(
                f"CALL system.unregister_table(schema_name => '{table.schema}', table_name => '{table.name}')"
            )
            cursor.fetchall()


def test_register_repoints_a_table_whose_root_moved(
    platform: InfraSettings, spark: SparkSession, lake_root: str, caplog: pytest.LogCaptureFixture
) -> None:
    table = Table(
        "gold", f"it_catalog_{uuid.uuid4().hex[:8]}", "id BIGINT NOT NULL, date DATE NOT NULL", ("date",), "test"
    )
    old, new = f"{lake_root}/a", f"{lake_root}/b"
    for row_id, root in ((1, old), (2, new)):
        sinks.ensure(spark, table, root)
        rows = spark.createDataFrame([(row_id, date(2026, 1, row_id))], "id BIGINT, date DATE")
        rows.write.format("delta").mode("append").save(table.s3a(root))

    try:
        with caplog.at_level(logging.WARNING, logger="vigil.lake.catalog"):
            assert catalog.register(platform, table, trino_root(old)) is True
            assert ids(platform, table) == [1]
            assert catalog.register(platform, table, trino_root(old)) is False  # same location: left alone
            assert not caplog.records

            assert catalog.register(platform, table, trino_root(new)) is True  # the root moved: re-pointed
            assert ids(platform, table) == [2]
            assert catalog.register(platform, table, trino_root(new)) is False
        with catalog.connect(platform) as connection:
            assert catalog.location(connection.cursor(), table) == table.s3(trino_root(new))
    finally:
        unregister(platform, table)  # nothing left in the catalog (the files go with `lake_root`)

    [warning] = caplog.records
    assert warning.levelno == logging.WARNING
    assert warning.name == "vigil.lake.catalog"
    message = warning.getMessage()
    assert table.qualified in message
    assert table.s3(trino_root(old)) in message
    assert table.s3(trino_root(new)) in message
