"""A Kedro dataset for one table of the project's DuckDB database."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from reclora_pipeline.duckdb_store import (
    DuckDBTable,
    TableData,
    connect,
    quote_identifier,
    replace_table,
    table_exists,
)


class DuckDBTableDataset(AbstractDataset[TableData, DuckDBTable]):
    """One DuckDB table: loads as a ``DuckDBTable`` handle, saves atomically.

    Saving accepts a lazy DuckDB relation (executed inside DuckDB, so big tables
    never pass through Python), a pyarrow Table or a pandas DataFrame. The new
    table replaces the old one only once it is complete (see ``replace_table``).

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

    def _connection(self):  # noqa: ANN202 - duckdb connection
        return connect(self._database, self._config)

    def load(self) -> DuckDBTable:
        connection = self._connection()
        if not table_exists(connection, self._table_name):
            raise DatasetError(
                f"table '{self._table_name}' does not exist in {self._database}: run the "
                "pipeline (or node) that produces it first"
            )
        return DuckDBTable(connection, self._table_name)

    def save(self, data: TableData) -> None:
        replace_table(self._connection(), self._table_name, data)

    def _exists(self) -> bool:
        return table_exists(self._connection(), self._table_name)

    def _describe(self) -> dict[str, Any]:
        return {"table_name": self._table_name, "database": self._database}
