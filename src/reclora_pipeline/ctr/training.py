"""Training (AdamW, early stopping on valid AUC), scoring and user representations."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from reclora_pipeline.ctr.features import CTRFeatures
from reclora_pipeline.ctr.memory import reuse_freed_memory
from reclora_pipeline.ctr.metrics import auc, logloss
from reclora_pipeline.errors import ParameterError, UserInputError

# Rows per forward pass when scoring (no gradients). Small batches keep the largest block,
# DIN's attention input ([rows, L, 4 * 128] float32: 31 MiB at 256 rows, L = 60), small and
# warm in the heap. Scoring at 256 rows took about half the time of 2048 with glibc's default
# allocator (blocks over 32 MiB are mmap'd and page-faulted in for every batch) and is still
# 5-25% faster with freed memory reused (memory.py). The probabilities are the same bits on
# the embedded ML-100K (BLAS may round a small last batch differently in the last bit).
INFERENCE_BATCH_SIZE = 256


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and early-stopping settings; tune them on the valid split only."""

    lr: float = 1e-3
    # AdamW's decoupled decay doubles as the embedding regulariser.
    weight_decay: float = 1e-4
    batch_size: int = 512
    max_epochs: int = 20
    # Epochs without a valid-AUC improvement before stopping.
    patience: int = 2
    seed: int = 0
    progress: bool = True
    # A benchmark knob: stop each epoch after this many optimizer steps (None = the whole
    # train split). A CRM epoch over ML-25M's 20M samples takes hours on 2 cores; capped
    # epochs measure the step rate from which a full epoch is extrapolated.
    max_steps_per_epoch: int | None = None
    # A benchmark knob: score at most this many valid and test rows (a uniform random
    # subset, fixed by ``seed``) for early stopping and the metrics. At ML-25M each split
    # has 2.4M rows, and scoring them takes longer than the capped training.
    max_eval_rows: int | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_epochs"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("max_steps_per_epoch", "max_eval_rows"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ParameterError(f"{name} must be >= 1 or null, got {value!r}")
        if self.patience < 0:
            raise ParameterError(f"patience must be >= 0, got {self.patience!r}")
        if self.lr <= 0:
            raise ParameterError(f"lr must be > 0, got {self.lr!r}")


@dataclass
class TrainResult:
    """Best weights (by valid AUC) and one dict per epoch (loss, valid AUC/LogLoss)."""

    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_valid_auc: float = float("nan")

    @property
    def epochs(self) -> int:
        return len(self.history)


def _batches(n: int, batch_size: int, order: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    index = torch.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        yield index[start : start + batch_size]


def _row_slices(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive row ranges: batches that are views, not gathered copies."""
    for start in range(0, n, batch_size):
        yield slice(start, start + batch_size)


def as_read_by(model: nn.Module, features: CTRFeatures) -> CTRFeatures:
    """``features`` as ``model`` reads them: only a model that declares
    ``reads_long_history`` (SIM) gets batches with the long list, so the others skip its
    search (the semantic one costs a similarity per history item)."""
    if getattr(model, "reads_long_history", False) or features.view.long is None:
        return features
    return features.with_view(dataclasses.replace(features.view, long=None))


def capped_rows(features: CTRFeatures, limit: int | None, seed: int) -> CTRFeatures:
    """At most ``limit`` rows of ``features``: all of them, or a uniform random subset
    (drawn with ``seed``) kept in their original order."""
    if limit is None or len(features) <= limit:
        return features
    generator = torch.Generator().manual_seed(seed)
    chosen, _ = torch.randperm(len(features), generator=generator)[:limit].sort()
    return features.select(chosen)


def _require_labels(features: CTRFeatures, name: str) -> np.ndarray:
    labels = features.label.numpy()
    if len(labels) == 0 or not np.isfinite(labels).all():
        raise UserInputError(
            f"{name} split needs a finite label for every sample (n={len(labels)})"
        )
    return labels


@reuse_freed_memory()
def train_ctr(
    model: nn.Module,
    train: CTRFeatures,
    valid: CTRFeatures,
    config: TrainConfig | None = None,
) -> TrainResult:
    """Train ``model`` on all of ``train``; keep the epoch with the best valid AUC.

    The model is left holding the best weights (also returned, detached copies, on CPU).
    Seeds torch (dropout) and the shuffling generator from ``config.seed``.
    """
    config = config or TrainConfig()
    train, valid = as_read_by(model, train), as_read_by(model, valid)
    _require_labels(train, "train")
    valid_labels = _require_labels(valid, "valid")
    torch.manual_seed(config.seed)
    shuffle = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    loss_fn = nn.BCEWithLogitsLoss()
    result = TrainResult(state_dict=copy.deepcopy(model.state_dict()))
    best_auc, stale = -1.0, 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=shuffle)
        batches = list(_batches(len(train), config.batch_size, order))
        bar = tqdm(
            batches[: config.max_steps_per_epoch],
            desc=f"{type(model).__name__} epoch {epoch}",
            disable=not config.progress,
            leave=False,
        )
        total, seen = 0.0, 0
        for index in bar:
            batch = train.batch(index)
            loss = loss_fn(model(batch), batch["label"])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(index)
            seen += len(index)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        probs = score(model, valid)
        valid_auc = auc(valid_labels, probs)
        result.history.append(
            {
                "epoch": float(epoch),
                "train_loss": total / max(seen, 1),
                "valid_auc": valid_auc,
                "valid_logloss": logloss(valid_labels, probs),
            }
        )
        if valid_auc > best_auc:
            best_auc, stale = valid_auc, 0
            result.best_epoch, result.best_valid_auc = epoch, valid_auc
            result.state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale > config.patience:
                break
    model.load_state_dict(result.state_dict)
    return result


@torch.no_grad()
@reuse_freed_memory()
def score(
    model: nn.Module, features: CTRFeatures, batch_size: int = INFERENCE_BATCH_SIZE
) -> np.ndarray:
    """Click probabilities [n] (float64) in eval mode."""
    model.eval()
    features = as_read_by(model, features)
    # Written in place: a small result kept per batch would sit between the batches' large
    # freed blocks on the heap (reuse_freed_memory) and make it grow with the rows scored.
    out = torch.empty(len(features), dtype=torch.float64)
    for rows in _row_slices(len(features), batch_size):
        out[rows] = torch.sigmoid(model(features.batch(rows)))
    return out.numpy()


@torch.no_grad()
@reuse_freed_memory()
def user_representations(
    model: nn.Module, features: CTRFeatures, batch_size: int = INFERENCE_BATCH_SIZE
) -> np.ndarray:
    """The frozen model's last MLP hidden vector per sample: [n, hidden_dim] float32, detached."""
    model.eval()
    features = as_read_by(model, features)
    parts = [
        model.user_representation(features.batch(rows))
        for rows in _row_slices(len(features), batch_size)
    ]
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(parts).detach().cpu().float().numpy()


def evaluate(
    model: nn.Module, features: CTRFeatures, batch_size: int = INFERENCE_BATCH_SIZE
) -> dict[str, float]:
    """AUC, LogLoss and n on a labelled split."""
    labels = _require_labels(features, "evaluated")
    probs = score(model, features, batch_size)
    return {"auc": auc(labels, probs), "logloss": logloss(labels, probs), "n": float(len(labels))}
