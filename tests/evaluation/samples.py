"""A small ``few2many_samples`` table for the evaluation tests."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from reclora_pipeline.duckdb_store import DuckDBTable


def few2many_samples(labels: list[int | None] | None = None) -> DuckDBTable:
    """Six rows, three of them test rows stored out of sample-id order."""
    subsets = ["test", "train", "test", "valid", "test", "train"]
    sample_ids = [30, 1, 10, 2, 20, 3]
    table = pa.table({
        "sample_id": pa.array(sample_ids, pa.int64()),
        "subset": subsets,
        "label": pa.array(labels or [1, 0, 0, 1, 1, 0], pa.int64()),
        "history_length": pa.array([3, 5, 7, 9, 11, 13], pa.int64()),
        "prompt": [f"retrieved {i}" for i in sample_ids],
        "recency_prompt": [f"recent {i}" for i in sample_ids],
        "answer": ["Yes"] * 6,
        "user_repr": [[float(i), 1.0] for i in sample_ids],
        "user_id": pa.array([4, 5, 6, 7, 8, 9], pa.int64()),
    })  # fmt: skip
    connection = duckdb.connect()
    connection.register("source", table)
    connection.execute("CREATE TABLE few2many_samples AS SELECT * FROM source")
    return DuckDBTable(connection, "few2many_samples")
