"""Register Delta tables (and views) in Trino's `vigil` catalog.

Spark writes the Delta log; Trino's file metastore only needs to be told where a
table lives. Registration is idempotent: a table already registered at the same
location is left alone, so every writer can call `register` at start. A table
registered elsewhere (the lake root moved) is re-pointed to the wanted location,
with a warning.
"""

from __future__ import annotations

import logging
import re

import trino

from infra.settings import InfraSettings
from jobs.lake.tables import Table

log = logging.getLogger("vigil.lake.catalog")
# The WITH clause of SHOW CREATE TABLE: `location = 's3://lake/bronze/packages'` (quotes doubled inside).
_LOCATION = re.compile(r"^\s*location = '((?:[^']|'')*)'", re.MULTILINE)


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


def location(cursor: trino.dbapi.Cursor, table: Table) -> str:
    """Where Trino reads the registered `table` from (the `location` of SHOW CREATE TABLE)."""
    cursor.execute(f"SHOW CREATE TABLE {table.qualified}")  # type: ignore[no-untyped-call]
    statement = str(cursor.fetchall()[0][0])
    found = _LOCATION.search(statement)
    if found is None:
        raise RuntimeError(f"no location in Trino's definition of {table.qualified}: {statement}")
    return found.group(1).replace("''", "'")


def register(settings: InfraSettings, table: Table, root: str | None = None) -> bool:
    """Make `table` (whose Delta log must exist) queryable in Trino at `root`; True if it was newly registered
    or re-pointed there from another location (the lake root moved), False if already registered there."""
    wanted = table.s3(root) if root else table.s3()
    with connect(settings) as connection:
        cursor = connection.cursor()
        if table.name in registered(cursor, table.schema):
            current = location(cursor, table)
            if current.rstrip("/") == wanted.rstrip("/"):
                return False
            _call(cursor, "unregister_table", table)
            try:
                _call(cursor, "register_table", table, wanted)
            except Exception:
                _call(cursor, "register_table", table, current)  # not left unregistered: back where it was
                raise
            log.warning("re-pointed %s in Trino from %s to %s", table.qualified, current, wanted)
            return True
        _call(cursor, "register_table", table, wanted)
    return True


def _call(cursor: trino.dbapi.Cursor, procedure: str, table: Table, table_location: str | None = None) -> None:
    """CALL one of the catalog's table procedures. CALL takes no prepared-statement parameters, hence literals
    (our own names, quoted)."""
    arguments = f"schema_name => {_literal(table.schema)}, table_name => {_literal(table.name)}"
    if table_location is not None:
        arguments += f", table_location => {_literal(table_location)}"
    cursor.execute(f"CALL system.{procedure}({arguments})")  # type: ignore[no-untyped-call]
    cursor.fetchall()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
