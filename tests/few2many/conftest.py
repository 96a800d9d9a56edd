"""Small samples / retrieved_histories / user_repr tables in DuckDB, shaped like the upstream
stages'."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest

from reclora_pipeline import duckdb_store
from reclora_pipeline.duckdb_store import DuckDBTable

N = 60
# The lens's click probability of each sample id (crm_uncertain's input).
LENS = {int(i): (int(i) - 100) / N for i in range(100, 100 + N)}
# Stored out of id order: nothing may depend on how rows arrived.
SAMPLE_IDS = np.random.default_rng(0).permutation(np.arange(100, 100 + N))
SPLITS = np.array(["train", "valid", "test"])[SAMPLE_IDS % 3]


@dataclass(frozen=True)
class Store:
    samples: DuckDBTable
    retrieved_histories: DuckDBTable
    user_repr: DuckDBTable


def _tables() -> dict[str, pa.Table]:
    ids = SAMPLE_IDS
    histories = [list(range(1, 2 + i % 6)) for i in ids]
    return {
        "samples": pa.table(
            {
                "sample_id": ids, "user_id": ids % 7 + 1, "item_id": ids % 11 + 20,
                "label": (ids % 2).astype(np.int8), "split": SPLITS,
                "history_length": [len(h) for h in histories],
                "history_item_ids": pa.array(histories, pa.list_(pa.int32())),
                "history_ratings": pa.array(
                    [[float(1 + j % 5) for j in h] for h in histories], pa.list_(pa.float32())
                ),
            }
        ),
        "retrieved_histories": pa.table(
            {
                "sample_id": ids,
                "text_history_item_ids": pa.array([h[-2:] for h in histories], pa.list_(pa.int32())),
                "text_history_ratings": pa.array(
                    [[float(1 + j % 5) for j in h[-2:]] for h in histories], pa.list_(pa.float32())
                ),
            }
        ),
        "user_repr": pa.table(
            {
                "sample_id": ids,
                "user_repr": pa.FixedSizeListArray.from_arrays(
                    pa.array(np.repeat(ids, 4).astype(np.float32)), 4
                ),
                "crm_probability": (ids - 100) / N,
            }
        ),
    }  # fmt: skip


@pytest.fixture
def store(database) -> Store:
    connection = duckdb_store.connect(database)
    for name, table in _tables().items():
        duckdb_store.replace_table(connection, name, table)
    return Store(*(DuckDBTable(connection, name) for name in _tables()))
