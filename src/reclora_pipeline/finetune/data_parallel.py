"""Splitting work across data-parallel processes and putting the results back together.

Each epoch has one global list of micro-batches, a function of (seed, epoch) only. Rank
``r`` of ``w`` processes takes micro-batches ``r, r + w, r + 2w, ...``, so one optimizer
step of the ``w`` processes (``gradient_accumulation_steps`` micro-batches each, gradients
averaged by DeepSpeed) applies exactly the micro-batches that one process with
``w * gradient_accumulation_steps`` accumulation steps would apply, in the same groups.
Scoring splits the rows the same way and gathers every process's scores, so each rank
computes the same valid AUC and takes the same early-stopping decision.

Without a process group (one process, a plain ``kedro run``) every function here is the
single-process identity.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist


def rank_and_world_size() -> tuple[int, int]:
    """(rank, world size) of this process: from the process group, else the launcher's
    environment, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _spread(world_size: int) -> bool:
    return world_size > 1 and dist.is_available() and dist.is_initialized()


def even_batches(batches: Sequence[np.ndarray], world_size: int) -> list[np.ndarray]:
    """``batches`` with their count made a multiple of ``world_size``: the last batches
    that hold two or more rows are halved until it is (every rank must take the same
    number of steps, and no row may be dropped or repeated)."""
    result = [np.asarray(rows) for rows in batches]
    index = len(result) - 1
    while len(result) % world_size:
        while index >= 0 and len(result[index]) < 2:
            index -= 1
        if index < 0:
            raise ValueError(
                f"{sum(len(rows) for rows in result)} training rows cannot be split over "
                f"{world_size} processes: each process needs at least one row per step"
            )
        rows = result[index]
        half = (len(rows) + 1) // 2
        result[index : index + 1] = [rows[:half], rows[half:]]
    return result


def rank_batches(batches: Sequence[np.ndarray], rank: int, world_size: int) -> list[np.ndarray]:
    """The micro-batches of ``rank``: every ``world_size``-th of the evened global list."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world size {world_size}")
    return even_batches(batches, world_size)[rank::world_size]


def rank_rows(lengths: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Row indices ``rank`` scores: every ``world_size``-th row in length order, so each
    process gets rows of every length and the processes finish together."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return order[rank::world_size]


def gather_scores(
    score_rows: Callable[[np.ndarray], np.ndarray], lengths: np.ndarray
) -> np.ndarray:
    """Scores of all rows, each process scoring its share (``score_rows(indices)``); every
    process gets the whole array back."""
    rank, world_size = rank_and_world_size()
    if not _spread(world_size):
        return np.asarray(score_rows(np.arange(len(lengths))), dtype=np.float64)
    mine = rank_rows(lengths, rank, world_size)
    local = (mine, np.asarray(score_rows(mine), dtype=np.float64))
    shares: list[tuple[np.ndarray, np.ndarray] | None] = [None] * world_size
    dist.all_gather_object(shares, local)
    scores = np.full(len(lengths), np.nan)
    for indices, values in shares:  # type: ignore[misc]
        scores[indices] = values
    return scores


def sum_over_ranks(value: float) -> float:
    """The sum of ``value`` over all processes (each process gets it)."""
    _, world_size = rank_and_world_size()
    if not _spread(world_size):
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item())


def mean_over_ranks(value: float) -> float:
    """The mean of ``value`` over all processes (each process gets it)."""
    _, world_size = rank_and_world_size()
    return sum_over_ranks(value) / (world_size if _spread(world_size) else 1)


def micro_batch_seed(seed: int, epoch: int, index: int) -> int:
    """The torch seed for the global micro-batch ``index`` of ``epoch``.

    Dropout draws from it, so a micro-batch gets the same masks whichever process
    applies it and however many processes there are (a global RNG stream would differ
    between 1 and 2 processes), and a resumed run replays the same masks.
    """
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])
