"""Non-sequential reference points for the CRMs: item popularity and logistic regression."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from reclora_pipeline.ctr.features import CTRFeatures, CTRVocab


def popularity_scores(
    train: CTRFeatures, scored: CTRFeatures, prior_strength: float = 10.0
) -> np.ndarray:
    """Each item's smoothed positive rate on ``train``: (positives + a * p) / (count + a).

    ``p`` is the global positive rate, so unseen items (and the OOV id) score ``p``.
    """
    items = train.item.numpy()
    labels = train.label.numpy().astype(np.float64)
    size = int(max(items.max(initial=0), scored.item.numpy().max(initial=0))) + 1
    counts = np.bincount(items, minlength=size).astype(np.float64)
    positives = np.bincount(items, weights=labels, minlength=size)
    prior = labels.mean() if len(labels) else 0.5
    rates = (positives + prior_strength * prior) / (counts + prior_strength)
    return rates[scored.item.numpy()]


class LogisticRegressionCTR(nn.Module):
    """A linear model over the same features as the CRMs (one weight per id or genre).

    logit = b + w_item[target] + w_genre . genres(target) + w_gender + w_age + w_occupation
            + mean over the history of w_hist[item]; no interactions, no hidden layer.
    """

    def __init__(self, vocab: CTRVocab) -> None:
        super().__init__()
        sizes = vocab.sizes
        genres = torch.as_tensor(vocab.item_genres, dtype=torch.float32)
        self.register_buffer("item_genres", genres / genres.sum(-1, keepdim=True).clamp_min(1.0))
        self.item = nn.Embedding(sizes["item"], 1, padding_idx=0)
        self.history_item = nn.Embedding(sizes["item"], 1, padding_idx=0)
        self.genre = nn.Linear(max(sizes["genre"], 1), 1, bias=False)
        self.gender = nn.Embedding(sizes["gender"], 1)
        self.age = nn.Embedding(sizes["age"], 1)
        self.occupation = nn.Embedding(sizes["occupation"], 1)
        self.bias = nn.Parameter(torch.zeros(1))
        for table in (self.item, self.history_item, self.gender, self.age, self.occupation):
            nn.init.zeros_(table.weight)
        nn.init.zeros_(self.genre.weight)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """-> logits [b]."""
        target = batch["item"]  # [b]
        logit = self.bias + self.item(target).squeeze(-1)  # [b]
        if self.item_genres.shape[-1]:
            logit = logit + self.genre(self.item_genres[target]).squeeze(-1)
        for name in ("gender", "age", "occupation"):
            logit = logit + getattr(self, name)(batch[name]).squeeze(-1)
        mask = batch["hist_mask"].float()  # [b, L]
        history = (self.history_item(batch["hist"]).squeeze(-1) * mask).sum(-1)  # [b]
        return logit + history / mask.sum(-1).clamp_min(1.0)
