"""DuckDB as the project's table store: shared connections, table handles, atomic replace.

DuckDB allows one writer per database file, and a query result is tied to the
connection that made it. So every part of one process that uses a given file
shares one connection (``connect``), tables travel between pipeline steps as
lightweight ``DuckDBTable`` handles, and a step's result is a lazy
``DuckDBPyRelation`` that only runs when it is stored (``replace_table``). Large
tables therefore never have to be materialised in Python.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

_CONNECTIONS: dict[str, duckdb.DuckDBPyConnection] = {}
_LOCK = threading.Lock()
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

TableData = duckdb.DuckDBPyRelation | pa.Table | pa.RecordBatchReader | pd.DataFrame


def quote_identifier(name: str) -> str:
    """Return ``name`` quoted for SQL, refusing anything but a plain identifier."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid table name {name!r}: use letters, digits and underscores")
    return f'"{name}"'


def connect(
    database: str | Path, config: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Return this process's shared connection to ``database`` (created on first use).

    ``config`` applies when the connection is opened; DuckDB refuses a second
    connection to the same file with other settings, so later calls share the
    first one whatever their ``config``.
    """
    path = str(Path(database).resolve()) if str(database) != ":memory:" else ":memory:"
    with _LOCK:
        connection = _CONNECTIONS.get(path)
        if connection is None:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            settings = {key: str(value) for key, value in (config or {}).items()}
            connection = duckdb.connect(path, config=settings)
            _CONNECTIONS[path] = connection
        return connection


def close_all() -> None:
    """Checkpoint and close every shared connection.

    The checkpoint moves everything from the write-ahead log (``<file>.wal``) into
    the database file, so the file alone holds every table (to copy or share it),
    and it frees the blocks of dropped tables for reuse by the next run.
    """
    with _LOCK:
        try:
            for path, connection in _CONNECTIONS.items():
                if path != ":memory:":
                    connection.execute("CHECKPOINT")
        finally:
            for connection in _CONNECTIONS.values():
                connection.close()
            _CONNECTIONS.clear()


@dataclass(frozen=True)
class DuckDBTable:
    """A named table inside a DuckDB connection; cheap to pass between steps."""

    connection: duckdb.DuckDBPyConnection
    name: str

    @property
    def sql_name(self) -> str:
        """The table name, quoted for SQL."""
        return quote_identifier(self.name)

    def relation(self) -> duckdb.DuckDBPyRelation:
        """A lazy relation over the whole table."""
        return self.connection.table(self.name)

    def arrow(self) -> pa.Table:
        """The whole table as a pyarrow Table (materialised: mind the size)."""
        return self.relation().to_arrow_table()

    def batches(self, query: str, rows: int) -> pa.RecordBatchReader:
        """``query``'s result as a stream of Arrow batches of ``rows`` rows. It reads on its
        own cursor, so the shared connection stays free (for writing the stream's output)."""
        return self.connection.cursor().sql(query).to_arrow_reader(rows)

    def df(self) -> pd.DataFrame:
        """The whole table as a pandas DataFrame (materialised: mind the size)."""
        return self.relation().df()

    def count(self) -> int:
        """Number of rows."""
        return int(fetch_row(self.connection, f"SELECT count(*) FROM {self.sql_name}")[0])

    def columns(self) -> list[str]:
        """Column names, in order."""
        return list(self.relation().columns)


def fetch_row(
    connection: duckdb.DuckDBPyConnection, sql: str, parameters: list[Any] | None = None
) -> tuple[Any, ...] | None:
    """The first row of a query, or None; the result is read to the end.

    ``execute(...).fetchone()`` would leave the result pending, and DuckDB then
    refuses other work on the connection until it is finished.
    """
    rows = connection.execute(sql, parameters or []).fetchall()
    return rows[0] if rows else None


def table_exists(connection: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a table or view called ``name`` exists in the main schema."""
    row = fetch_row(
        connection,
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'",
        [name],
    )
    return bool(row and row[0])


def publish_tables(connection: duckdb.DuckDBPyConnection, renames: dict[str, str]) -> None:
    """Rename each ``source`` table to its ``target`` (replacing it), all in one transaction.

    Either every target is replaced or, on any failure, none is.
    """
    connection.execute("BEGIN TRANSACTION")
    try:
        for source, target in renames.items():
            connection.execute(f"DROP TABLE IF EXISTS {quote_identifier(target)}")
            connection.execute(
                f"ALTER TABLE {quote_identifier(source)} RENAME TO {quote_identifier(target)}"
            )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def drop_tables_with_suffix(connection: duckdb.DuckDBPyConnection, suffix: str) -> list[str]:
    """Drop every main-schema table whose name ends with ``suffix``; return their names."""
    names = [
        row[0]
        for row in connection.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
            "AND suffix(table_name, ?)",
            [suffix],
        ).fetchall()
    ]
    for name in names:
        connection.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")
    return names


def replace_table(connection: duckdb.DuckDBPyConnection, name: str, data: TableData) -> None:
    """Store ``data`` as table ``name``, replacing any previous table atomically.

    The new rows are first written to a staging table; only when that succeeded
    is the old table dropped and the staging table renamed, in one transaction.
    A failure at any point leaves the previous table exactly as it was.
    """
    quote_identifier(name)  # refuse a bad name before writing anything
    staging_name = f"{name}__staging"
    staging = quote_identifier(staging_name)
    connection.execute(f"DROP TABLE IF EXISTS {staging}")
    try:
        if isinstance(data, duckdb.DuckDBPyRelation):
            # Runs inside the relation's own connection, which is ours when the
            # relation was derived from a table handed out by this module.
            data.create(staging_name)
            if not table_exists(connection, staging_name):
                raise ValueError(
                    f"cannot store table {name!r}: the relation belongs to another DuckDB "
                    "connection; pass a pyarrow Table or pandas DataFrame instead"
                )
        elif isinstance(data, pa.Table | pa.RecordBatchReader | pd.DataFrame):
            view = f"{staging_name}_source"
            connection.register(view, data)
            try:
                connection.execute(f"CREATE TABLE {staging} AS SELECT * FROM {view}")
            finally:
                connection.unregister(view)
        else:
            raise TypeError(
                f"cannot store table {name!r} from {type(data).__name__}: expected a DuckDB "
                "relation, a pyarrow Table/RecordBatchReader or a pandas DataFrame"
            )
        publish_tables(connection, {staging_name: name})
    finally:
        connection.execute(f"DROP TABLE IF EXISTS {staging}")
