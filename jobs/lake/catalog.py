"""Register Delta tables (and views) in Trino's `vigil` catalog.

Spark writes the Delta log; Trino's file metastore only needs to be told where a
table lives. Registration is idempotent: a table already registered at the same
location is left alone, so every writer can call `register` at start.
"""

from __future__ import annotations

import trino

from infra.settings import InfraSettings
from jobs.lake.tables import Table


def connect(settings: InfraSettings, user: str = "vigil-jobs") -> trino.dbapi.Connection:
    connection: trino.dbapi.Connection = trino.dbapi.connect(  # type: ignore[no-untyped-call]
        host=settings.host, port=settings.trino_port, user=user, catalog=settings.trino_catalog
    )
    return connection


def offsets_predicate(
    since: dict[int, int], until: dict[int, int], partition: str = "kafka_partition", offset: str = "kafka_offset"
) -> str:
    """A SQL predicate selecting the rows a lake table landed from Kafka positions [since, until) per partition.

    Only integers go into it, so it is safe to format into a query."""
    terms = [
        f"({partition} = {p} AND {offset} >= {since.get(p, 0)} AND {offset} < {end})"
        for p, end in until.items()
        if end > since.get(p, 0)
    ]
    return "(" + " OR ".join(terms or ["FALSE"]) + ")"


def registered(cursor: trino.dbapi.Cursor, schema: str) -> set[str]:
    cursor.execute(f"SHOW TABLES FROM {schema}")  # type: ignore[no-untyped-call]
    return {row[0] for row in cursor.fetchall()}


def register(settings: InfraSettings, table: Table, root: str | None = None) -> bool:
    """Make `table` (whose Delta log must exist) queryable in Trino; True if it was newly registered."""
    location = table.s3(root) if root else table.s3()
    with connect(settings) as connection:
        cursor = connection.cursor()
        if table.name in registered(cursor, table.schema):
            return False
        # CALL takes no prepared-statement parameters, hence literals (our own names, quoted).
        cursor.execute(
            f"CALL system.register_table(schema_name => {_literal(table.schema)}, "
            f"table_name => {_literal(table.name)}, table_location => {_literal(location)})"
        )
        cursor.fetchall()
    return True


def flush_metadata_cache(settings: InfraSettings, table: Table) -> None:
    """Trino caches a table's Delta snapshot briefly; after a schema change a job can ask it to re-read."""
    with connect(settings) as connection:
        cursor = connection.cursor()
        cursor.execute(
            f"CALL system.flush_metadata_cache(schema_name => {_literal(table.schema)}, "
            f"table_name => {_literal(table.name)})"
        )
        cursor.fetchall()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
