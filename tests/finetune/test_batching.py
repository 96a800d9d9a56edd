"""Length-sorted training batches: every row once, fixed by the seed, less padding."""

from __future__ import annotations

import numpy as np
import pytest

from reclora_pipeline.finetune.batching import (
    consecutive_batches,
    length_bucketed_batches,
    length_sorted_batches,
    padding_share,
)

LENGTHS = np.random.default_rng(7).integers(100, 500, size=256)


def _batches(seed: int, window: int) -> list[np.ndarray]:
    return length_bucketed_batches(LENGTHS, 4, np.random.default_rng([seed, 0]), window)


@pytest.mark.parametrize("window", [1, 3, 16, 1000])
def test_every_row_is_in_exactly_one_batch(window):
    batches = _batches(0, window)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(LENGTHS)))
    assert all(1 <= len(rows) <= 4 for rows in batches)


def test_the_batches_are_a_function_of_the_seed():
    same = [a.tolist() for a in _batches(0, 16)] == [b.tolist() for b in _batches(0, 16)]
    other = [a.tolist() for a in _batches(0, 16)] != [b.tolist() for b in _batches(1, 16)]
    assert same and other


def test_a_window_of_one_batch_is_plain_shuffling():
    order = np.random.default_rng([0, 0]).permutation(len(LENGTHS))
    assert np.array_equal(np.concatenate(_batches(0, 1)), order)


def test_sorting_within_windows_cuts_padding():
    shuffled, sorted_ = (
        padding_share(LENGTHS, _batches(0, 1)),
        padding_share(LENGTHS, _batches(0, 16)),
    )
    assert shuffled > 0.2 and sorted_ < shuffled / 4


def test_padding_share_and_the_scoring_batches():
    lengths = np.array([4, 2, 2, 1])
    assert padding_share(lengths, [np.array([0, 1])]) == pytest.approx(1 - 6 / 8)
    assert padding_share(lengths, length_sorted_batches(lengths, 2)) == pytest.approx(1 - 9 / 12)
    assert [b.tolist() for b in consecutive_batches(5, 2)] == [[0, 1], [2, 3], [4]]


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        length_bucketed_batches(LENGTHS, 0, np.random.default_rng(0), 4)
