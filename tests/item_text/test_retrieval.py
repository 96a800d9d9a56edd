"""Retrieval on hand-made histories: K, chronological order, no target, short histories, metrics."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.item_text.retrieval import (
    gather_lists,
    normalised_table,
    padded,
    select_positions,
)

# Item vectors in 2-D; row = item id, row 0 is padding.
VECTORS = np.array(
    [[0, 0], [1, 0], [0, 1], [0.9, 0.1], [-1, 0], [0.2, 0.98], [10, 3]], dtype=np.float32
)


def _select(histories, targets, k, strategy, metric="cosine"):
    history, lengths = padded(pa.array(histories, pa.list_(pa.int64())), np.int64)
    positions, counts = select_positions(
        history, lengths, np.array(targets), k, strategy, normalised_table(VECTORS, metric)
    )
    return gather_lists(history, positions, counts).to_pylist()


def test_semantic_keeps_the_k_most_similar_in_chronological_order():
    # Target 1 points along x: by cosine, item 3 (0.9, 0.1) then item 6 (10, 3) are closest.
    assert _select([[5, 3, 4, 6, 2]], [1], 2, "semantic") == [[3, 6]]


def test_recency_keeps_the_last_k():
    assert _select([[5, 3, 4, 6, 2]], [1], 3, "recency") == [[4, 6, 2]]


def test_short_histories_keep_everything_they_have():
    assert _select([[2, 3], [4]], [1, 1], 4, "semantic") == [[2, 3], [4]]
    assert _select([[2, 3], [4]], [1, 1], 4, "recency") == [[2, 3], [4]]


def test_never_the_target_itself():
    assert _select([[1, 3, 1, 4]], [1], 4, "semantic") == [[3, 4]]
    assert _select([[3, 4, 1]], [1], 1, "recency") == [[4]]


def test_rows_of_one_batch_are_independent():
    together = _select([[5, 3, 4, 6, 2], [2, 5, 4]], [1, 2], 2, "semantic")
    alone = _select([[2, 5, 4]], [2], 2, "semantic")
    assert together[1] == alone[0]


def test_dot_product_favours_long_vectors_cosine_does_not():
    # Item 6 is long and close to x; item 3 is short but nearly parallel to target 1.
    assert _select([[3, 6, 2]], [1], 1, "semantic", "cosine") == [[3]]
    assert _select([[3, 6, 2]], [1], 1, "semantic", "dot") == [[6]]


def test_unknown_names_are_rejected():
    with pytest.raises(ParameterError, match="accepted values"):
        normalised_table(VECTORS, "euclid")
    with pytest.raises(ParameterError, match="accepted values"):
        _select([[2]], [1], 1, "random")


def test_padded_round_trip():
    lists = pa.array([[1, 2, 3], [], [4]], pa.list_(pa.int64()))
    array, lengths = padded(lists, np.int64)
    assert array.tolist() == [[1, 2, 3], [0, 0, 0], [4, 0, 0]] and lengths.tolist() == [3, 0, 1]


def test_chunked_similarities_match_one_pass(monkeypatch):
    from reclora_pipeline.item_text import retrieval

    rng = np.random.default_rng(0)
    histories = [list(rng.integers(1, 7, size=n)) for n in rng.integers(1, 8, size=40)]
    targets = list(rng.integers(1, 7, size=40))
    whole = _select(histories, targets, 3, "semantic")
    monkeypatch.setattr(retrieval, "_CHUNK_FLOATS", 16)  # a few rows per chunk
    assert _select(histories, targets, 3, "semantic") == whole
