"""Recency text histories: the ``reclora_no_retriever`` ablation's prompt history."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from reclora_pipeline.item_text import retrieval


def recency_histories(
    history_item_ids: pa.ChunkedArray | pa.ListArray,
    history_ratings: pa.ChunkedArray | pa.ListArray,
    target_item_ids: np.ndarray,
    k: int,
) -> tuple[pa.ListArray, pa.ListArray]:
    """The last ``k`` history items (never the target) and their ratings, oldest first.

    The same rule the item_text retriever applies with ``text_retrieval: recency``.
    """
    history, lengths = retrieval.padded(history_item_ids, np.int64)
    ratings, _ = retrieval.padded(history_ratings, np.float32)
    positions, counts = retrieval.select_positions(history, lengths, target_item_ids, k, "recency")
    return (
        retrieval.gather_lists(history.astype(np.int32), positions, counts),
        retrieval.gather_lists(ratings, positions, counts),
    )
