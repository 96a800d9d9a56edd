"""DIN: target attention over the behaviour sequence (Zhou et al., 2018)."""

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


class DIN(nn.Module):
    """Deep Interest Network over the recent history (``hist`` / ``hist_mask`` in the batch).

    Tower input: [user profile, target item, attention-pooled history]; the tower's last
    hidden layer (``hidden_dim``) is the target-aware user representation.
    """

    def __init__(
        self,
        vocab: CTRVocab,
        embed_dim: int = 64,
        hidden_dim: int = 256,
        n_layers: int = 3,
        dropout: float = 0.1,
        use_ratings: bool = True,
    ) -> None:
        super().__init__()
        self.items = ItemEncoder(vocab, embed_dim)
        self.history = HistoryEncoder(self.items, vocab, use_ratings)
        self.users = UserEncoder(vocab, embed_dim)
        self.attention = TargetAttention(self.items.out_dim)
        in_dim = self.users.out_dim + 2 * self.items.out_dim
        self.tower = Tower(in_dim, hidden_dim, n_layers, dropout)
        init_embeddings(self)

    def attention_weights(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """-> [b, L] attention weights over ``hist`` (exactly 0 on padding)."""
        target = self.items(batch["item"])  # [b, d]
        keys = self.history(batch["hist"], batch["hist_rating"])  # [b, L, d]
        return self.attention.weights(target, keys, batch["hist_mask"])

    def _tower_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = self.items(batch["item"])  # [b, d]
        keys = self.history(batch["hist"], batch["hist_rating"])  # [b, L, d]
        interest = self.attention(target, keys, batch["hist_mask"])  # [b, d]
        return torch.cat([self.users(batch), target, interest], dim=-1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """-> logits [b]."""
        return self.tower(self._tower_input(batch))

    def user_representation(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """-> [b, hidden_dim], the last hidden layer of the tower."""
        return self.tower.hidden_vector(self._tower_input(batch))
