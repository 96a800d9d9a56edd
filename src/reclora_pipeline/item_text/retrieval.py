"""The Long-Short Modality Retriever: which history items each side of the model sees (the
text side here; the CRM side, over the lifelong sequences, is ``ctr.long_history``).

Histories arrive as padded [batch, L] arrays in chronological order (padding 0
at the end). Selection is vectorised over the batch with torch: no loop over
samples or history positions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from reclora_pipeline.errors import ParameterError

STRATEGIES = ("semantic", "recency")
METRICS = ("cosine", "dot")


@dataclass(frozen=True)
class RetrievalRecipe:
    """How the retriever picked each sample's text-side history (item_text's settings).

    item_text records it in ``prompt_recipe`` so that predict retrieves the histories of
    new rows exactly as the samples' were retrieved.
    """

    similarity: str
    k_text: int
    text_retrieval: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrievalRecipe:
        """The recipe :meth:`to_dict` wrote (keys of retired settings, such as the CRM side's
        ``k_crm`` that ctr_lens took over, are ignored)."""
        return cls(**{field.name: data[field.name] for field in dataclasses.fields(cls)})


def padded(lists: pa.ListArray | pa.ChunkedArray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """An Arrow list column as a right-padded [n, max_len] array and the lengths."""
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    lengths = np.diff(lists.offsets.to_numpy()).astype(np.int64)
    width = max(int(lengths.max(initial=0)), 1)
    values = lists.flatten().to_numpy(zero_copy_only=False).astype(dtype)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    columns = np.arange(len(values)) - np.repeat(lengths.cumsum() - lengths, lengths)
    out = np.zeros((len(lengths), width), dtype=dtype)
    out[rows, columns] = values
    return out, lengths


def normalised_table(embeddings: np.ndarray, metric: str) -> torch.Tensor:
    """[n_items + 1, d] lookup table, row = item id (row 0, padding, is zero)."""
    if metric not in METRICS:
        raise ParameterError(
            f"unknown similarity metric {metric!r}; accepted values: {list(METRICS)}"
        )
    table = torch.from_numpy(np.asarray(embeddings, dtype=np.float32))
    if metric == "cosine":
        table = torch.nn.functional.normalize(table, dim=1)
    return table


# Gathered history vectors per chunk of rows: [rows, L, d] floats of about 16 MB (128 rows
# at L = 60, d = 512), small enough to stay in cache between the gather and the product.
# Chunks of 128 MB (the first version) ran about 2x slower: the gathered block went out to
# memory and was read back (docs/benchmarks.md, "Stages at ML-25M scale").
_CHUNK_FLOATS = 2**22


def _similarities(
    ids: torch.Tensor, targets: torch.Tensor, item_table: torch.Tensor
) -> torch.Tensor:
    """[b, L] similarity of every history item to its row's target, in bounded-memory chunks."""
    rows = max(1, _CHUNK_FLOATS // max(1, ids.shape[1] * item_table.shape[1]))
    scores = torch.empty(ids.shape, dtype=item_table.dtype)
    for start in range(0, ids.shape[0], rows):
        chunk = slice(start, start + rows)
        history = torch.nn.functional.embedding(ids[chunk], item_table)  # [rows, L, d]
        target = torch.nn.functional.embedding(targets[chunk], item_table)  # [rows, d]
        scores[chunk] = torch.bmm(history, target.unsqueeze(2)).squeeze(2)  # [rows, L]
    return scores


def select_positions(
    history_ids: np.ndarray,
    lengths: np.ndarray,
    target_ids: np.ndarray,
    k: int,
    strategy: str,
    item_table: torch.Tensor | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into each history) of the chosen items, chronological, and their count.

    ``semantic``: the ``k`` earlier items most similar to the target (rows of
    ``item_table`` indexed by item id), then put back in chronological order.
    ``recency``: the last ``k``. The target item itself is never chosen, nor an item
    where ``allowed`` ([batch, L] bool, optional) is False.
    Returns [batch, k] positions (-1 = empty slot, after the real ones) and counts.
    """
    if strategy not in STRATEGIES:
        raise ParameterError(
            f"unknown retrieval strategy {strategy!r}; accepted values: {list(STRATEGIES)}"
        )
    ids = torch.from_numpy(history_ids.astype(np.int64))
    width = ids.shape[1]
    position = torch.arange(width).expand_as(ids)
    valid = (position < torch.from_numpy(lengths)[:, None]) & (
        ids != torch.from_numpy(target_ids.astype(np.int64))[:, None]
    )
    if allowed is not None:
        valid &= torch.from_numpy(np.asarray(allowed, dtype=bool))
    if strategy == "semantic":
        if item_table is None:
            raise ParameterError("semantic retrieval needs item embeddings")
        scores = _similarities(ids, torch.from_numpy(target_ids.astype(np.int64)), item_table)
    else:
        scores = position.to(torch.float32)  # newest = highest
    scores = scores.masked_fill(~valid, float("-inf"))
    take = min(k, width)
    top_scores, top_positions = scores.topk(take, dim=1)
    chosen = torch.isfinite(top_scores)
    # Empty slots sort last; real ones in chronological (position) order.
    top_positions = torch.where(chosen, top_positions, torch.full_like(top_positions, width))
    top_positions, _ = top_positions.sort(dim=1)
    top_positions = torch.where(
        top_positions == width, torch.full_like(top_positions, -1), top_positions
    )
    if take < k:
        top_positions = torch.nn.functional.pad(top_positions, (0, k - take), value=-1)
    return top_positions.numpy(), chosen.sum(1).numpy()


def gather_lists(values: np.ndarray, positions: np.ndarray, counts: np.ndarray) -> pa.ListArray:
    """Arrow lists of ``values[row, position]`` for each row's first ``counts`` positions."""
    rows = np.repeat(np.arange(len(counts)), counts)
    columns = positions[np.arange(positions.shape[1])[None, :] < counts[:, None]]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values[rows, columns]))
