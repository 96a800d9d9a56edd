"""How a batch reads its histories from the sequence store: DIN's recent window and SIM's
long list, retrieved from the lifelong history (the CRM side of the Long-Short Modality
Retriever).

SIM's list is K_crm items picked from up to ``lifelong_max_history`` earlier interactions:
- ``recency``: the newest K_crm;
- ``semantic`` (soft search): the K_crm most similar to the target by item-embedding
  similarity (item_text's embeddings), kept in chronological order;
- ``genre`` (hard search): the newest K_crm that share a genre with the target.
The target item itself is never picked. The search runs per batch, so no per-sample copy
of the long list is ever stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from reclora_pipeline.ctr.sequences import Sequences
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.item_text.retrieval import select_positions

LONG_RETRIEVALS = ("recency", "semantic", "genre")


@dataclass(frozen=True)
class LongHistorySearch:
    """SIM's long list: ``k`` items out of the newest ``scan`` earlier interactions.

    ``item_vectors`` ([n_items + 2, d], row = model item id, normalised for the metric)
    serves ``semantic``; ``item_genres`` ([n_items + 2, n_genres] multi-hot) serves
    ``genre``. An item whose vector is zero (no embedding) scores 0 against every target.
    """

    k: int = 60
    scan: int = 60
    strategy: str = "recency"
    item_vectors: torch.Tensor | None = field(default=None, repr=False)
    item_genres: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.strategy not in LONG_RETRIEVALS:
            raise ParameterError(
                f"ctr_lens.crm_retrieval={self.strategy!r}; accepted values: "
                f"{list(LONG_RETRIEVALS)}"
            )
        if self.k < 1 or self.scan < self.k:
            raise ParameterError(
                f"ctr_lens.lifelong_max_history ({self.scan}) must be at least ctr_lens.k_crm "
                f"({self.k}, itself >= 1): SIM picks its K_crm items out of that many earlier "
                "interactions. Raise lifelong_max_history or lower k_crm"
            )
        needed = {"semantic": self.item_vectors, "genre": self.item_genres}
        if self.strategy in needed and needed[self.strategy] is None:
            raise ParameterError(
                f"ctr_lens.crm_retrieval={self.strategy!r} needs the item "
                f"{'embeddings' if self.strategy == 'semantic' else 'genres'}, which these "
                "ctr_features lack: rerun ctr_lens.build_ctr_features"
            )

    def pick(
        self, sequences: Sequences, start: torch.Tensor, end: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Item ids, rating ids and mask ([b, k], left-aligned, chronological) of each
        row's long list; ``start``/``end`` bound its history, ``target`` is its item."""
        ids, ratings, mask = sequences.window(start, end, self.scan)
        allowed = None
        if self.strategy == "genre":
            genres = self.item_genres
            allowed = ((genres[ids] * genres[target][:, None, :]).sum(-1) > 0).numpy()
        positions, counts = select_positions(
            ids.numpy(),
            mask.sum(1).numpy(),
            target.numpy(),
            self.k,
            "semantic" if self.strategy == "semantic" else "recency",
            self.item_vectors,
            allowed,
        )
        chosen = torch.from_numpy(positions)
        picked = chosen >= 0
        index = chosen.clamp(min=0)
        return (
            ids.gather(1, index) * picked,
            ratings.gather(1, index) * picked,
            picked,
        )


def item_vector_table(embeddings: np.ndarray, n_items: int) -> torch.Tensor:
    """``[n_items + 2, d]`` raw vectors by model item id from ``embeddings`` (row = dense
    item id, row 0 padding): rows past the embedded ids, row 0 and the OOV row are zero."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    table = np.zeros((n_items + 2, embeddings.shape[1]), dtype=np.float32)
    rows = min(len(embeddings), n_items + 1)
    table[:rows] = embeddings[:rows]
    table[0] = 0.0
    return torch.from_numpy(table)


@dataclass(frozen=True)
class HistoryView:
    """What a batch gathers: the newest ``max_history`` items (DIN, DeepFM, SIM's short
    branch) and, with ``long`` set, SIM's retrieved long list."""

    max_history: int = 60
    long: LongHistorySearch | None = None

    def __post_init__(self) -> None:
        if self.max_history < 1:
            raise ParameterError(f"ctr_lens.max_history must be >= 1, got {self.max_history}")
