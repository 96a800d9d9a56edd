"""retrieve_histories streams batches into its table: same rows as one batch, any batch size."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from reclora_pipeline import duckdb_store
from reclora_pipeline.duckdb_store import DuckDBTable, replace_table
from reclora_pipeline.item_text import history_table
from reclora_pipeline.item_text.settings import ItemTextSettings

SETTINGS = ItemTextSettings(k_text=2, text_retrieval="semantic")


def _samples(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 8, n)
    return pa.table(
        {
            "sample_id": np.arange(n, dtype=np.int64),
            "user_id": rng.integers(1, 5, n),
            "item_id": rng.integers(1, 30, n),
            "label": rng.integers(0, 2, n),
            "split": rng.choice(["train", "valid", "test"], n),
            "history_item_ids": [rng.integers(1, 30, k).tolist() for k in lengths],
            "history_ratings": [rng.integers(1, 6, k).astype(float).tolist() for k in lengths],
        }
    )


def _embeddings() -> pa.Table:
    vectors = np.random.default_rng(1).normal(size=(29, 4)).astype(np.float32)
    return pa.table({"item_id": np.arange(1, 30), "embedding": list(vectors)})


@pytest.fixture()
def tables(tmp_path):
    connection = duckdb_store.connect(tmp_path / "store.duckdb")
    replace_table(connection, "samples", _samples(100))
    replace_table(connection, "item_embeddings", _embeddings())
    yield DuckDBTable(connection, "samples"), DuckDBTable(connection, "item_embeddings")
    duckdb_store.close_all()


def test_streamed_batches_match_one_batch(tables, monkeypatch):
    samples, embeddings = tables
    lookup = history_table.embedding_lookup(embeddings, SETTINGS.similarity)
    whole = history_table.retrieve_batch(
        samples.arrow(), lookup, history_table.retrieval_recipe(SETTINGS)
    )
    monkeypatch.setattr(history_table, "BATCH_ROWS", 7)
    stream = history_table.retrieve_histories(samples, embeddings, SETTINGS)
    assert isinstance(stream, pa.RecordBatchReader)
    # Saved through the connection the stream reads from, as the catalog does.
    replace_table(samples.connection, "retrieved_histories", stream)
    stored = samples.connection.sql("SELECT * FROM retrieved_histories ORDER BY sample_id")
    assert stored.to_arrow_table().to_pylist() == whole.sort_by("sample_id").to_pylist()


def test_no_samples_gives_an_empty_table_with_the_retrieved_columns(tables):
    samples, embeddings = tables
    samples.connection.execute("DELETE FROM samples")
    stream = history_table.retrieve_histories(samples, embeddings, SETTINGS)
    replace_table(samples.connection, "retrieved_histories", stream)
    stored = DuckDBTable(samples.connection, "retrieved_histories")
    assert stored.count() == 0
    assert "text_history_item_ids" in stored.columns()
    # The CRM side reads the lifelong sequences in ctr_lens, not this table.
    assert "crm_history_item_ids" not in stored.columns()
