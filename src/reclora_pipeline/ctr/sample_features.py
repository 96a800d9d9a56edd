"""CTR features of every stored sample: per-sample ids read from DuckDB, pointing into the
lifelong sequence store built once from the interactions, each tagged with its split."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import torch

from reclora_pipeline.ctr.features import CTRFeatures, CTRVocab, profile_features
from reclora_pipeline.ctr.long_history import item_vector_table
from reclora_pipeline.ctr.sequences import Sequences, narrow_ids
from reclora_pipeline.ctr.splits import split_codes
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.item_text.history_table import embedding_rows

logger = logging.getLogger(__name__)


def interaction_store(
    interactions: DuckDBTable, vocab: CTRVocab
) -> tuple[Sequences, np.ndarray, np.ndarray]:
    """Every user's interactions in the samples' order (timestamp, then item id), users
    back to back; and, indexed by ``interaction_id``, each interaction's index in that
    store and the index of its user's first interaction (-1 for ids not present)."""
    table = interactions.connection.sql(
        "SELECT interaction_id, user_id, item_id, rating "
        f"FROM {interactions.sql_name} ORDER BY user_id, timestamp, item_id, interaction_id"
    ).to_arrow_table()
    user = table.column("user_id").to_numpy()
    n = len(user)
    first_rows = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if n else np.zeros(0, int)
    first = np.repeat(first_rows, np.diff(np.r_[first_rows, n]))
    interaction_id = table.column("interaction_id").to_numpy()
    size = int(interaction_id.max()) + 1 if n else 0
    position = np.full(size, -1, dtype=np.int64)
    position[interaction_id] = np.arange(n)
    user_first = np.full(size, -1, dtype=np.int64)
    user_first[interaction_id] = first
    items = table.column("item_id").cast(pa.float64()).to_numpy(zero_copy_only=False)
    ratings = table.column("rating").cast(pa.float64()).to_numpy(zero_copy_only=False)
    sequences = Sequences(
        items=narrow_ids(vocab.map_items(items)),
        ratings=torch.from_numpy(vocab.map_ratings(ratings).astype(np.int8)),
    )
    return sequences, position, user_first


def search_tables(
    item_embeddings: DuckDBTable, vocab: CTRVocab
) -> tuple[torch.Tensor, torch.Tensor]:
    """The item tables SIM's long-history searches read: raw item vectors by model item id
    ([n_items + 2, d]) and the multi-hot genres ([n_items + 2, n_genres], float32)."""
    vectors = item_vector_table(embedding_rows(item_embeddings), vocab.n_items)
    return vectors, torch.from_numpy(vocab.item_genres)


def sample_features(
    samples: DuckDBTable, interactions: DuckDBTable, vocab: CTRVocab
) -> CTRFeatures:
    """Features of every sample, ordered by ``sample_id`` (the sample's interaction id):
    its history is every earlier interaction of its user, in the sequence store; its split
    code is ``extra["split"]``."""
    sequences, position, user_first = interaction_store(interactions, vocab)
    # Ordered by sample_id so every node sees the rows in the same order.
    table = samples.connection.sql(
        f"SELECT sample_id, user_id, item_id, label, split FROM {samples.sql_name} "
        "ORDER BY sample_id"
    ).to_arrow_table()
    sample_id = table.column("sample_id").to_numpy()
    known = (sample_id >= 0) & (sample_id < len(position))
    end = np.where(known, position[np.where(known, sample_id, 0)], -1)
    missing = sample_id[end < 0]
    if missing.size:
        raise UserInputError(
            f"{missing.size} samples have no interaction in {interactions.sql_name} "
            f"(sample_id {missing[:3].tolist()}): rerun ingest"
        )
    start = user_first[sample_id]
    logger.info(
        "ctr features: %d samples over %d stored interactions", len(sample_id), len(sequences)
    )
    return CTRFeatures(
        **profile_features(table, vocab),
        history_start=torch.from_numpy(start),
        history_end=torch.from_numpy(end),
        sequences=sequences,
        extra={"split": torch.from_numpy(split_codes(table.column("split")))},
    )
