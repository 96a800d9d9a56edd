"""CTR features of every stored sample, read from DuckDB and tagged with its split."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from reclora_pipeline.ctr.features import CTRFeatures, CTRVocab, build_features
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.duckdb_store import DuckDBTable

SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}


def sample_features(
    samples: DuckDBTable,
    retrieved_histories: DuckDBTable,
    vocab: CTRVocab,
    settings: CtrLensSettings,
) -> CTRFeatures:
    """Features of every sample, ordered by ``sample_id``, with the CRM-side long history
    joined and ``extra["split"]`` holding each sample's split code."""
    # Ordered by sample_id so every node sees the rows in the same order.
    table = samples.connection.sql(
        "SELECT sample_id, user_id, item_id, label, split, history_item_ids, history_ratings "
        f"FROM {samples.sql_name} ORDER BY sample_id"
    ).to_arrow_table()
    long_history = retrieved_histories.connection.sql(
        "SELECT sample_id, crm_history_item_ids, crm_history_ratings "
        f"FROM {retrieved_histories.sql_name}"
    ).to_arrow_table()
    features = build_features(
        table,
        vocab,
        max_history=settings.max_history,
        long_history=long_history,
        max_long_history=settings.max_long_history,
    )
    features.extra["split"] = torch.from_numpy(split_codes(table.column("split")))
    return features


def split_codes(split: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Each split name's code (``SPLIT_CODES``; an unknown or null name counts as test)."""
    codes = np.full(len(split), SPLIT_CODES["test"], dtype=np.int64)
    for name in ("train", "valid"):
        # Compared in Arrow: no Python string per row.
        chosen = pc.fill_null(pc.equal(split, name), False).to_numpy(zero_copy_only=False)
        codes[chosen] = SPLIT_CODES[name]
    return codes


def of_split(features: CTRFeatures, split: str) -> CTRFeatures:
    """The rows of ``features`` in ``split`` (train, valid or test), in their order."""
    chosen = features.extra["split"] == SPLIT_CODES[split]
    return features.select(torch.nonzero(chosen).squeeze(1))
