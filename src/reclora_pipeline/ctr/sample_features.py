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
from reclora_pipeline.duckdb_store import DuckDBTable, fetch_row
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.item_text.history_table import embedding_rows

logger = logging.getLogger(__name__)


# Rows per Arrow batch read from DuckDB: the Python-side copies stay at a few tens of MB
# per column whatever the table's size (ML-25M: 25M interactions, 24M samples).
BATCH_ROWS = 1 << 20


def interaction_store(
    interactions: DuckDBTable, vocab: CTRVocab
) -> tuple[Sequences, np.ndarray, np.ndarray]:
    """Every user's interactions in the samples' order (timestamp, then item id), users
    back to back; and, indexed by ``interaction_id``, each interaction's index in that
    store and the index of its user's first interaction (-1 for ids not present).

    Read in batches and written into arrays sized once, so memory holds the store and
    the two indexes, not the whole table besides."""
    n, max_id = fetch_row(
        interactions.connection,
        f"SELECT count(*), coalesce(max(interaction_id), -1) FROM {interactions.sql_name}",
    )
    items = np.empty(n, dtype=np.int32)
    ratings = np.empty(n, dtype=np.int8)
    position = np.full(int(max_id) + 1, -1, dtype=np.int64)
    user_first = np.full(int(max_id) + 1, -1, dtype=np.int64)
    query = (
        "SELECT interaction_id, user_id, item_id, rating FROM "
        f"{interactions.sql_name} ORDER BY user_id, timestamp, item_id, interaction_id"
    )
    done, last_user, last_first = 0, None, 0
    for batch in interactions.batches(query, BATCH_ROWS):
        user = batch.column("user_id").to_numpy()
        rows = np.arange(done, done + len(user))
        # A user's first row: where the user id changes (across batches too).
        starts = np.r_[last_user is None or user[0] != last_user, user[1:] != user[:-1]]
        first = np.where(starts, rows, -1)
        if not starts[0]:
            first[0] = last_first  # the user goes on from the previous batch
        first = np.maximum.accumulate(first)
        interaction_id = batch.column("interaction_id").to_numpy()
        position[interaction_id] = rows
        user_first[interaction_id] = first
        item = batch.column("item_id").cast(pa.float64()).to_numpy(zero_copy_only=False)
        rating = batch.column("rating").cast(pa.float64()).to_numpy(zero_copy_only=False)
        items[rows] = narrow_ids(vocab.map_items(item)).numpy()
        ratings[rows] = vocab.map_ratings(rating).astype(np.int8)
        done, last_user, last_first = done + len(user), user[-1], int(first[-1])
    if done != n:
        raise RuntimeError(f"{interactions.sql_name} changed while it was read ({done} of {n})")
    sequences = Sequences(items=torch.from_numpy(items), ratings=torch.from_numpy(ratings))
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
    code is ``extra["split"]``. Samples are read in batches into tensors sized once."""
    sequences, position, user_first = interaction_store(interactions, vocab)
    n = samples.count()
    rows: dict[str, torch.Tensor] = {}
    done = 0
    # Ordered by sample_id so every node sees the rows in the same order.
    query = (
        f"SELECT sample_id, user_id, item_id, label, split FROM {samples.sql_name} "
        "ORDER BY sample_id"
    )
    missing: list[np.ndarray] = []
    for batch in samples.batches(query, BATCH_ROWS):
        table = pa.Table.from_batches([batch])
        sample_id = table.column("sample_id").to_numpy()
        known = (sample_id >= 0) & (sample_id < len(position))
        safe_id = np.where(known, sample_id, 0)
        end = np.where(known, position[safe_id], -1)
        missing.append(sample_id[end < 0])
        part = {
            **profile_features(table, vocab),
            "history_start": torch.from_numpy(np.where(known, user_first[safe_id], -1)),
            "history_end": torch.from_numpy(end),
            "split": torch.from_numpy(split_codes(table.column("split"))),
        }
        for name, values in part.items():
            if name not in rows:  # sized once, from the first batch's dtypes
                rows[name] = torch.empty((n, *values.shape[1:]), dtype=values.dtype)
            rows[name][done : done + len(values)] = values
        done += len(sample_id)
    if done != n:
        raise RuntimeError(f"{samples.sql_name} changed while it was read ({done} of {n})")
    unmatched = np.concatenate(missing) if missing else np.zeros(0, dtype=np.int64)
    if unmatched.size:
        raise UserInputError(
            f"{unmatched.size} samples have no interaction in {interactions.sql_name} "
            f"(sample_id {unmatched[:3].tolist()}): rerun ingest"
        )
    if not rows:  # no samples, so no batch: the columns of the empty result
        empty = samples.connection.sql(query + " LIMIT 0").to_arrow_table()
        no_rows = torch.zeros(0, dtype=torch.int64)
        rows = {
            **profile_features(empty, vocab),
            "history_start": no_rows,
            "history_end": no_rows.clone(),
            "split": torch.zeros(0, dtype=torch.int8),
        }
    logger.info("ctr features: %d samples over %d stored interactions", n, len(sequences))
    split = rows.pop("split")
    return CTRFeatures(**rows, sequences=sequences, extra={"split": split})
