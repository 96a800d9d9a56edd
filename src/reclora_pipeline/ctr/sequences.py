"""Lifelong behaviour sequences, stored once: every user's interactions back to back.

A sample does not carry a copy of its history. It points into the store with two indices:
its sequence's first entry (``start``) and the entry just after its newest earlier
interaction (``end``), so ``items[start:end]`` is everything the user did before it,
oldest first. Memory is 5 bytes per interaction (int32 item id, int8 rating id) however
long the histories the models read; a batch's histories are gathered when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from reclora_pipeline.errors import UserInputError


@dataclass
class Sequences:
    """Item ids (model ids, int32) and rating ids (int8) of every stored interaction."""

    items: torch.Tensor  # [n_interactions]
    ratings: torch.Tensor  # [n_interactions]

    def __post_init__(self) -> None:
        if self.items.shape != self.ratings.shape or self.items.dim() != 1:
            raise UserInputError(
                f"sequence items {tuple(self.items.shape)} and ratings "
                f"{tuple(self.ratings.shape)} must be two vectors of one length"
            )

    def __len__(self) -> int:
        return int(self.items.shape[0])

    def window(
        self, start: torch.Tensor, end: torch.Tensor, length: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The newest ``length`` entries of each ``[start, end)`` range, left-aligned and
        oldest first: item ids, rating ids (int64, 0 = padding) and the mask, each
        [b, length]."""
        first = torch.maximum(start, end - length)
        position = torch.arange(length)
        mask = position[None, :] < (end - first)[:, None]
        if len(self) == 0:
            zeros = torch.zeros(mask.shape, dtype=torch.int64)
            return zeros, zeros.clone(), mask
        index = torch.where(mask, first[:, None] + position[None, :], 0)
        ids = torch.where(mask, self.items[index].long(), 0)
        ratings = torch.where(mask, self.ratings[index].long(), 0)
        return ids, ratings, mask


def narrow_ids(values: np.ndarray) -> torch.Tensor:
    """Non-negative ids in int32 (item ids of a sequence store): half of int64's memory."""
    if values.size and int(values.max()) > np.iinfo(np.int32).max:
        raise UserInputError(f"id {int(values.max())} does not fit the sequence store's int32")
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.int32))


def list_lengths(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Length of each list (null lists are empty), int64."""
    lengths = pc.fill_null(pc.list_value_length(column), 0)
    return lengths.to_numpy(zero_copy_only=False).astype(np.int64)


def aligned_values(values: pa.Array | pa.ChunkedArray | None, lengths: np.ndarray) -> np.ndarray:
    """Flat float64 values of a list column laid out like lists of ``lengths``: entry j of
    row i is ``values[i][j]``, NaN where that list is shorter (or the column is absent)."""
    total = int(lengths.sum())
    if values is None:
        return np.full(total, np.nan)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    own = list_lengths(values)
    flat = values.flatten().cast(pa.float64()).to_numpy(zero_copy_only=False)
    if np.array_equal(own, lengths):
        return flat
    row = np.repeat(np.arange(len(lengths)), lengths)
    j = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    source = np.cumsum(own) - own
    valid = j < own[row]
    out = np.full(total, np.nan)
    out[valid] = flat[source[row[valid]] + j[valid]]
    return out
