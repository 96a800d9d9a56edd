"""Building blocks shared by the CTR models: embeddings, target attention, the MLP tower."""

from __future__ import annotations

import torch
from torch import nn

from reclora_pipeline.ctr.features import CTRVocab


class ItemEncoder(nn.Module):
    """Item id embedding concatenated with a genre-bag embedding (mean over the item's genres).

    Output dim is ``2 * embed_dim``. Padding (id 0) encodes to exactly zero; the OOV id has its
    own learned id embedding and no genres.
    """

    def __init__(self, vocab: CTRVocab, embed_dim: int) -> None:
        super().__init__()
        sizes = vocab.sizes
        self.id_emb = nn.Embedding(sizes["item"], embed_dim, padding_idx=0)
        # The genre table travels in the state dict so a checkpoint is self-contained.
        genres = torch.as_tensor(vocab.item_genres, dtype=torch.float32)
        # Row-normalised so an item's genre vector is the mean of its genre embeddings.
        genres = genres / genres.sum(-1, keepdim=True).clamp_min(1.0)
        self.register_buffer("item_genres", genres)  # [n_items + 2, n_genres]
        self.genre_emb = nn.Linear(max(sizes["genre"], 1), embed_dim, bias=False)
        self.out_dim = 2 * embed_dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [...] -> [..., 2 * embed_dim]."""
        genres = self.item_genres[ids]  # [..., n_genres]
        if genres.shape[-1] == 0:  # no genre vocabulary: a zero genre part
            genre_vec = self.id_emb(ids).new_zeros(*ids.shape, self.genre_emb.out_features)
        else:
            genre_vec = self.genre_emb(genres)
        return torch.cat([self.id_emb(ids), genre_vec], dim=-1)


class UserEncoder(nn.Module):
    """Gender, age bucket and occupation embeddings, concatenated (id 0 = unknown, learned)."""

    def __init__(self, vocab: CTRVocab, embed_dim: int) -> None:
        super().__init__()
        sizes = vocab.sizes
        self.gender = nn.Embedding(sizes["gender"], embed_dim)
        self.age = nn.Embedding(sizes["age"], embed_dim)
        self.occupation = nn.Embedding(sizes["occupation"], embed_dim)
        self.out_dim = 3 * embed_dim

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """-> [b, 3 * embed_dim]."""
        parts = [
            self.gender(batch["gender"]),
            self.age(batch["age"]),
            self.occupation(batch["occupation"]),
        ]
        return torch.cat(parts, dim=-1)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim where padded positions get exactly 0 weight.

    A row with no valid position (empty history) gets all-zero weights instead of NaN.
    """
    any_valid = mask.any(dim=-1, keepdim=True)  # [..., 1]
    scores = scores.masked_fill(~mask, float("-inf"))
    # Empty rows: finite scores so softmax has no NaN, then zeroed by the mask.
    scores = scores.masked_fill(~any_valid, 0.0)
    return torch.softmax(scores, dim=-1) * mask


class TargetAttention(nn.Module):
    """DIN activation unit: score each behaviour against the target, pool by the weights.

    The unit sees [q, k, q - k, q * k] so it can model both similarity and difference.
    Weights are a masked softmax (DIN's raw sigmoid scores are unbounded in sum; the softmax
    keeps long and short histories on one scale).
    """

    def __init__(self, dim: int, hidden: tuple[int, ...] = (80, 40)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 4 * dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.PReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.unit = nn.Sequential(*layers)

    def weights(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """query [b, d], keys [b, L, d], mask [b, L] -> weights [b, L] (0 on padding)."""
        q = query.unsqueeze(1).expand_as(keys)  # [b, L, d]
        scores = self.unit(torch.cat([q, keys, q - keys, q * keys], dim=-1)).squeeze(-1)  # [b, L]
        if bias is not None:
            scores = scores + bias
        return masked_softmax(scores, mask)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """-> pooled interest [b, d]."""
        w = self.weights(query, keys, mask, bias)  # [b, L]
        return torch.einsum("bl,bld->bd", w, keys)


class Tower(nn.Module):
    """``n_layers`` x (Linear -> ReLU -> Dropout) of width ``hidden``, then a logit head.

    ``hidden_vector`` is the last hidden layer's output: the user representation h.
    """

    def __init__(self, in_dim: int, hidden: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)

    def hidden_vector(self, x: torch.Tensor) -> torch.Tensor:
        """x [b, in_dim] -> [b, hidden]."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [b, in_dim] -> logits [b]."""
        return self.head(self.body(x)).squeeze(-1)


class HistoryEncoder(nn.Module):
    """Behaviour keys: item encoding plus an (optional) rating embedding, zero on padding."""

    def __init__(self, items: ItemEncoder, vocab: CTRVocab, use_ratings: bool) -> None:
        super().__init__()
        self.items = items
        self.rating = (
            nn.Embedding(vocab.sizes["rating"], items.out_dim, padding_idx=0)
            if use_ratings
            else None
        )

    def forward(self, ids: torch.Tensor, ratings: torch.Tensor) -> torch.Tensor:
        """ids, ratings [b, L] -> keys [b, L, d]."""
        keys = self.items(ids)
        if self.rating is not None:
            keys = keys + self.rating(ratings)
        return keys


def init_embeddings(module: nn.Module, std: float = 0.05) -> None:
    """Re-initialise every nn.Embedding with N(0, std^2), keeping padding rows at zero.

    torch's default N(0, 1) makes FM pairwise terms and attention inputs huge at the start
    (DeepFM's first-epoch loss was ~4 with it); a small scale starts near a constant CTR.
    """
    for sub in module.modules():
        if isinstance(sub, nn.Embedding):
            nn.init.normal_(sub.weight, std=std)
            if sub.padding_idx is not None:
                with torch.no_grad():
                    sub.weight[sub.padding_idx].zero_()
