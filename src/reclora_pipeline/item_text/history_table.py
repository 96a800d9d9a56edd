"""Retrieved text-side histories for every sample (the CRM side reads the lifelong
sequences in ctr_lens)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.item_text import retrieval
from reclora_pipeline.item_text.prompt_table import ID_COLUMNS
from reclora_pipeline.item_text.settings import ItemTextSettings

# Samples retrieved per batch: bounds memory on ML-25M-sized sample tables.
BATCH_ROWS = 65_536

logger = logging.getLogger(__name__)


def embedding_rows(item_embeddings: DuckDBTable) -> np.ndarray:
    """[max_item_id + 1, d] float32 vectors indexed by item id (row 0 and ids without an
    embedding are zero)."""
    table = item_embeddings.arrow()
    ids = table.column("item_id").to_numpy()
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    lookup = np.zeros((int(ids.max()) + 1, vectors.shape[1]), dtype=np.float32)
    lookup[ids] = vectors
    return lookup


def embedding_lookup(item_embeddings: DuckDBTable, metric: str) -> torch.Tensor:
    """:func:`embedding_rows`, normalised for ``metric`` (the retriever's lookup table)."""
    return retrieval.normalised_table(embedding_rows(item_embeddings), metric)


def retrieval_recipe(settings: ItemTextSettings) -> retrieval.RetrievalRecipe:
    """The retrieval part of ``settings`` (what predict needs to retrieve new rows' histories)."""
    return retrieval.RetrievalRecipe(
        similarity=settings.similarity,
        k_text=settings.k_text,
        text_retrieval=settings.text_retrieval,
    )


def retrieve_batch(
    batch: pa.RecordBatch | pa.Table, lookup: torch.Tensor, recipe: retrieval.RetrievalRecipe
) -> pa.Table:
    """The id columns of ``batch`` with the text-side history lists picked from its
    ``history_item_ids`` / ``history_ratings`` (``lookup``: :func:`embedding_lookup`)."""
    history, lengths = retrieval.padded(batch.column("history_item_ids"), np.int64)
    ratings, _ = retrieval.padded(batch.column("history_ratings"), np.float32)
    targets = batch.column("item_id").to_numpy()
    out = {name: batch.column(name) for name in ID_COLUMNS}
    positions, counts = retrieval.select_positions(
        history, lengths, targets, recipe.k_text, recipe.text_retrieval, lookup
    )
    out["text_history_item_ids"] = retrieval.gather_lists(
        history.astype(np.int32), positions, counts
    )
    out["text_history_ratings"] = retrieval.gather_lists(ratings, positions, counts)
    return pa.table(out)


def retrieve_histories(
    samples: DuckDBTable, item_embeddings: DuckDBTable, settings: ItemTextSettings
) -> pa.RecordBatchReader:
    """The text-side (K_text) history of every sample, in chronological order, picked by
    ``item_text.text_retrieval``.

    A stream of batches of ``BATCH_ROWS`` samples: the table it is saved to receives each
    batch as it is retrieved, so memory stays bounded however many samples there are. Rows
    come in the order DuckDB scans ``samples``; readers order by ``sample_id``.
    """
    lookup = embedding_lookup(item_embeddings, settings.similarity)
    recipe = retrieval_recipe(settings)
    total = samples.count()
    columns = ", ".join((*ID_COLUMNS, "history_item_ids", "history_ratings"))
    # On its own cursor: the table this stream is saved to is written through the shared
    # connection while these batches are still being read.
    reader = samples.batches(f"SELECT {columns} FROM {samples.sql_name}", BATCH_ROWS)
    # The output schema, from an empty batch: the stream must announce it before its first row.
    schema = retrieve_batch(reader.schema.empty_table(), lookup, recipe).schema
    return pa.RecordBatchReader.from_batches(
        schema, _retrieved_batches(reader, lookup, recipe, total)
    )


def _retrieved_batches(
    reader: pa.RecordBatchReader,
    lookup: torch.Tensor,
    recipe: retrieval.RetrievalRecipe,
    total: int,
) -> Iterator[pa.RecordBatch]:
    """Each batch of ``reader`` retrieved, with a progress bar and a closing log line."""
    started = time.perf_counter()
    done = 0
    with tqdm(total=total, desc="retrieving histories", unit="sample", leave=False) as bar:
        for batch in reader:
            yield from retrieve_batch(batch, lookup, recipe).to_batches()
            done += batch.num_rows
            bar.update(batch.num_rows)
    elapsed = time.perf_counter() - started
    logger.info("retrieved histories for %d samples in %.1f s (%.0f samples/s)",
                done, elapsed, done / max(elapsed, 1e-9))  # fmt: skip
