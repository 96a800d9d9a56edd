"""Training micro-batches of similar lengths, in an order fixed by the seed.

A batch is padded to its longest example, so random batches of prompts from 100 to 500
tokens spend much of their compute on padding. Sorting by length within a window of
shuffled rows and then shuffling the batches keeps most of the randomness of plain
shuffling (the window's rows are still a random draw) while padding little. Every
random choice comes from the generator passed in, so a resumed run replays the same
batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def length_bucketed_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, window_batches: int
) -> list[np.ndarray]:
    """Row indices of every micro-batch: rows shuffled, each window of
    ``window_batches * batch_size`` rows sorted by length (longest first) and cut into
    batches, then the batches shuffled. ``window_batches=1`` is plain shuffled batching."""
    if batch_size < 1 or window_batches < 1:
        raise ValueError(f"batch_size and window_batches must be >= 1, got "
                         f"{batch_size} and {window_batches}")  # fmt: skip
    order = rng.permutation(len(lengths))
    if window_batches == 1:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    window = batch_size * window_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        rows = order[start : start + window]
        rows = rows[np.argsort(-lengths[rows], kind="stable")]
        batches.extend(rows[i : i + batch_size] for i in range(0, len(rows), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of rows sorted longest first (for scoring, where the order is free)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def consecutive_batches(n: int, batch_size: int) -> list[np.ndarray]:
    """Batches of rows in their given order: the padding a naive loop would pay."""
    return [np.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def padding_share(lengths: np.ndarray, batches: Sequence[np.ndarray]) -> float:
    """Share of the token positions in ``batches`` that are padding (each batch is padded
    to its longest row)."""
    padded = sum(len(rows) * int(lengths[rows].max()) for rows in batches if len(rows))
    real = sum(int(lengths[rows].sum()) for rows in batches)
    return 0.0 if padded == 0 else 1.0 - real / padded
