"""SIM: search over a long (retrieved) behaviour list, then target attention (Pi et al., 2020).

The batch already narrows the lifelong history to the K_crm retrieved items (``long_hist``,
gathered by ``ctr.long_history``). Here a soft-search unit (GSU) scores those items against the target by
an inner product of learned projections and keeps the ``top_k``; an exact-search unit (ESU)
runs target attention over the kept items. The recent history (``hist``) gets its own DIN
attention, as in SIM's short-term branch.
"""

from __future__ import annotations

import torch
from torch import nn

from reclora_pipeline.ctr.features import CTRVocab
from reclora_pipeline.ctr.layers import (
    HistoryEncoder,
    ItemEncoder,
    TargetAttention,
    Tower,
    UserEncoder,
    init_embeddings,
)


class SIM(nn.Module):
    """Search-based interest model; without ``long_hist`` in the batch it searches ``hist``."""

    # Batches for this model carry the long list (``ctr.training.as_read_by``).
    reads_long_history = True

    def __init__(
        self,
        vocab: CTRVocab,
        embed_dim: int = 64,
        hidden_dim: int = 256,
        n_layers: int = 3,
        dropout: float = 0.1,
        use_ratings: bool = True,
        top_k: int = 20,
    ) -> None:
        super().__init__()
        self.top_k = top_k
        self.items = ItemEncoder(vocab, embed_dim)
        self.history = HistoryEncoder(self.items, vocab, use_ratings)
        self.users = UserEncoder(vocab, embed_dim)
        d = self.items.out_dim
        self.search_q = nn.Linear(d, embed_dim, bias=False)
        self.search_k = nn.Linear(d, embed_dim, bias=False)
        self.short_attention = TargetAttention(d)
        self.long_attention = TargetAttention(d)
        self.tower = Tower(self.users.out_dim + 3 * d, hidden_dim, n_layers, dropout)
        init_embeddings(self)

    def search(
        self, target: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """GSU: target [b, d], keys [b, K, d], mask [b, K] -> top-k keys, mask, relevance."""
        relevance = torch.einsum("be,bke->bk", self.search_q(target), self.search_k(keys))
        relevance = relevance / self.search_q.out_features**0.5  # [b, K]
        k = min(self.top_k, keys.shape[1])
        # Padding ranks last; fewer valid items than k leaves padded picks masked out.
        ranked = relevance.masked_fill(~mask, float("-inf"))
        index = ranked.topk(k, dim=-1).indices  # [b, k]
        picked = keys.gather(1, index.unsqueeze(-1).expand(-1, -1, keys.shape[-1]))  # [b, k, d]
        return picked, mask.gather(1, index), relevance.gather(1, index)

    def _tower_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = self.items(batch["item"])  # [b, d]
        short_keys = self.history(batch["hist"], batch["hist_rating"])  # [b, L, d]
        short = self.short_attention(target, short_keys, batch["hist_mask"])  # [b, d]
        if batch.get("long_hist") is not None:
            ids, ratings, mask = (
                batch["long_hist"],
                batch["long_hist_rating"],
                batch["long_hist_mask"],
            )
        else:
            ids, ratings, mask = batch["hist"], batch["hist_rating"], batch["hist_mask"]
        picked, picked_mask, relevance = self.search(target, self.history(ids, ratings), mask)
        # The relevance enters the ESU logits so the (otherwise hard) search gets a gradient.
        long = self.long_attention(target, picked, picked_mask, bias=relevance)  # [b, d]
        return torch.cat([self.users(batch), target, short, long], dim=-1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """-> logits [b]."""
        return self.tower(self._tower_input(batch))

    def user_representation(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """-> [b, hidden_dim], the last hidden layer of the tower."""
        return self.tower.hidden_vector(self._tower_input(batch))
