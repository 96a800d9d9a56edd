"""A Kedro dataset for one table of the project's DuckDB database."""

from __future__ import annotations

from typing import Any

import duckdb
from kedro.io import AbstractDataset, DatasetError

from reclora_pipeline.duckdb_store import (
    DuckDBTable,
    TableData,
    connect,
    quote_identifier,
    replace_table,
    table_exists,
)
from reclora_pipeline.staging import STAGED_OUTPUTS, PendingTable, pending_table_name


class DuckDBTableDataset(AbstractDataset[TableData, DuckDBTable]):
    """One DuckDB table: loads as a ``DuckDBTable`` handle, saves atomically.

    Saving accepts a lazy DuckDB relation (executed inside DuckDB, so big tables
    never pass through Python), a pyarrow Table or a pandas DataFrame. The new
    table replaces the old one only once it is complete (see ``replace_table``).
    During a ``kedro run`` it is written as ``<table>__pending`` and published
    with the rest of its stage (see ``reclora_pipeline.staging``).

    Example catalog entry::

        interactions:
          type: reclora_pipeline.datasets.DuckDBTableDataset
          table_name: interactions
          database: data/03_primary/reclora.duckdb
          config: {memory_limit: 4GB}
    """

    def __init__(
        self,
        table_name: str,
        database: str,
        config: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        quote_identifier(table_name)  # fail at catalog construction on a bad name
        self._table_name = table_name
        self._database = database
        self._config = dict(config or {})
        self.metadata = metadata

    @property
    def database(self) -> str:
        """The DuckDB file this table lives in."""
        return self._database

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The process's shared connection to the database (opened on first use)."""
        return connect(self._database, self._config)

    @property
    def _pending(self) -> PendingTable:
        return PendingTable(self._database, self._table_name)

    def _current_name(self) -> str:
        """The pending table when this run wrote one, else the published table."""
        if STAGED_OUTPUTS.is_pending(self._pending):
            return pending_table_name(self._table_name)
        return self._table_name

    def load(self) -> DuckDBTable:
        connection = self.connection()
        name = self._current_name()
        if not table_exists(connection, name):
            raise DatasetError(
                f"table '{self._table_name}' does not exist in {self._database}: run the "
                "pipeline (or node) that produces it first"
            )
        return DuckDBTable(connection, name)

    def save(self, data: TableData) -> None:
        if STAGED_OUTPUTS.active:
            replace_table(self.connection(), pending_table_name(self._table_name), data)
            STAGED_OUTPUTS.add(self._pending)
        else:
            replace_table(self.connection(), self._table_name, data)

    def _exists(self) -> bool:
        return table_exists(self.connection(), self._current_name())

    def _describe(self) -> dict[str, Any]:
        return {"table_name": self._table_name, "database": self._database}
