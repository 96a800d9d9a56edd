"""Recency text histories: the ``reclora_no_retriever`` ablation's prompt history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from reclora_pipeline.item_text import retrieval
from reclora_pipeline.item_text.prompt_table import ID_COLUMNS, PromptRecipe, render_prompt_table


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


def with_recency_prompts(
    rows: pa.Table, items: pd.DataFrame, users: pd.DataFrame, recipe: PromptRecipe
) -> pa.Table:
    """``rows`` without their history lists, plus ``recency_prompt``: the prompt rendered
    by ``recipe`` with the last ``recipe.k_text`` history items instead of retrieved ones.

    ``rows`` needs the id columns and ``history_item_ids`` / ``history_ratings``.
    """
    ids, ratings = recency_histories(
        rows.column("history_item_ids"),
        rows.column("history_ratings"),
        rows.column("item_id").to_numpy(),
        recipe.k_text,
    )
    frame = rows.select(list(ID_COLUMNS)).to_pandas()
    frame["recency_ids"], frame["recency_ratings"] = ids.to_pylist(), ratings.to_pylist()
    rendered = render_prompt_table(frame, ("recency_ids", "recency_ratings"), items, users, recipe)
    return rows.drop_columns(["history_item_ids", "history_ratings"]).append_column(
        "recency_prompt", rendered.column("prompt")
    )
