"""Test-set metrics for the LLM arms and the CRMs: AUC, LogLoss, accuracy and bootstrap CIs.

AUC and LogLoss are the CTR stage's own (``reclora_pipeline.ctr.metrics``), so the LLM arms
and the CRMs are scored by one definition. The bootstrap draws row multiplicities instead of
copying rows: one sort per model, then every resample is a weighted AUC over tied-score groups.

Rows of one user are not independent (the same history, the same taste), so the bootstrap
can resample whole users (pass ``users``): a user drawn k times brings all of its rows k
times. Resampling rows instead treats 500 rows of 98 users as 500 independent draws, and
its intervals come out too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reclora_pipeline.ctr.metrics import auc, logloss
from reclora_pipeline.errors import ParameterError, UserInputError

__all__ = [
    "EvaluationInputError",
    "accuracy",
    "auc",
    "bootstrap_auc_interval",
    "check_labels",
    "check_probabilities",
    "logloss",
    "model_metrics",
    "paired_bootstrap_auc_difference",
    "user_groups",
]

# Resamples are processed in chunks of at most this many (resample x row) cells, so a large
# test set does not need an n_boot x n matrix in memory at once.
_CHUNK_CELLS = 2_000_000


class EvaluationInputError(UserInputError):
    """Labels or predicted probabilities that cannot be scored; the message names the model."""


def check_labels(labels: Any, model: str = "model", *, both_classes: bool = True) -> np.ndarray:
    """Labels as a float 0/1 vector; raises ``EvaluationInputError`` naming ``model``."""
    if labels is None:
        raise EvaluationInputError(f"{model}: labels are missing")
    try:
        y = np.asarray(labels, dtype=np.float64).ravel()
    except (TypeError, ValueError) as error:
        raise EvaluationInputError(f"{model}: labels are not numbers ({error})") from error
    if y.size == 0:
        raise EvaluationInputError(f"{model}: labels are missing (the test set is empty)")
    if np.isnan(y).any():
        raise EvaluationInputError(
            f"{model}: {int(np.isnan(y).sum())} label(s) are missing (NaN); every test row needs 0 or 1"
        )
    bad = (y != 0.0) & (y != 1.0)
    if bad.any():
        examples = ", ".join(str(v) for v in np.unique(y[bad])[:5])
        raise EvaluationInputError(f"{model}: labels must be 0 or 1, found {examples}")
    if both_classes and (y.min() == y.max()):
        raise EvaluationInputError(
            f"{model}: every label is {int(y[0])}; "
            "a test set without both classes cannot be scored by AUC"
        )
    return y


def check_probabilities(probs: Any, n: int, model: str = "model") -> np.ndarray:
    """Probabilities as a float vector of length ``n`` inside [0, 1]; raises naming ``model``."""
    if probs is None:
        raise EvaluationInputError(f"{model}: predicted probabilities are missing")
    try:
        p = np.asarray(probs, dtype=np.float64).ravel()
    except (TypeError, ValueError) as error:
        raise EvaluationInputError(f"{model}: probabilities are not numbers ({error})") from error
    if p.size != n:
        raise EvaluationInputError(
            f"{model}: {p.size} probabilities for {n} labels; there must be one per test row"
        )
    if np.isnan(p).any():
        raise EvaluationInputError(f"{model}: {int(np.isnan(p).sum())} probabilities are NaN")
    outside = (p < 0.0) | (p > 1.0)
    if outside.any():
        raise EvaluationInputError(
            f"{model}: {int(outside.sum())} probabilities lie outside [0, 1] "
            f"(min {p.min():.4g}, max {p.max():.4g}); pass probabilities, not logits"
        )
    return p


def _inputs(labels: Any, probs: Any, model: str) -> tuple[np.ndarray, np.ndarray]:
    y = check_labels(labels, model)
    return y, check_probabilities(probs, y.size, model)


def accuracy(labels: Any, probs: Any, threshold: float = 0.5, *, model: str = "model") -> float:
    """Share of rows where ``probs >= threshold`` agrees with the label."""
    y, p = _inputs(labels, probs, model)
    return float(np.mean((p >= threshold) == (y == 1.0)))


def _check_bootstrap(n_boot: int, level: float) -> None:
    if int(n_boot) < 1:
        raise ParameterError(f"n_boot={n_boot!r} must be a positive number of resamples")
    if not 0.0 < float(level) < 1.0:
        raise ParameterError(f"level={level!r} must lie strictly between 0 and 1, e.g. 0.95")


@dataclass(frozen=True)
class _Ranked:
    """One model's rows sorted by score, with the start of each tied-score group."""

    order: np.ndarray
    starts: np.ndarray
    positive: np.ndarray  # labels in sorted order, as bool

    @classmethod
    def of(cls, y: np.ndarray, p: np.ndarray) -> _Ranked:
        order = np.argsort(p, kind="stable")
        sorted_p = p[order]
        starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
        return cls(order=order, starts=starts, positive=y[order] == 1.0)

    def aucs(self, counts: np.ndarray) -> np.ndarray:
        """AUC of each resample (a row of ``counts``); NaN where a resample has one class."""
        c = counts[:, self.order]
        pos = np.add.reduceat(np.where(self.positive, c, 0), self.starts, axis=1).astype(float)
        neg = np.add.reduceat(np.where(self.positive, 0, c), self.starts, axis=1).astype(float)
        # A positive beats every negative in lower score groups and ties half of its own group.
        below = np.cumsum(neg, axis=1) - neg
        wins = (pos * (below + 0.5 * neg)).sum(axis=1)
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        out = np.full(len(counts), np.nan)
        np.divide(wins, pairs, out=out, where=pairs > 0)
        return out


def _draw_counts(rng: np.random.Generator, size: int, units: int) -> np.ndarray:
    """Multiplicities [size, units] of ``size`` resamples of ``units`` draws with replacement."""
    draws = rng.integers(0, units, size=(size, units))
    flat = (draws + units * np.arange(size)[:, None]).ravel()
    return np.bincount(flat, minlength=size * units).reshape(size, units)


def _resample_counts(n: int, n_boot: int, seed: int, groups: np.ndarray | None = None):
    """Yield chunks of row multiplicities, shape [chunk, n], of n_boot resamples.

    Without ``groups`` rows are drawn with replacement. ``groups`` (a dense code 0..g-1 per
    row) draws g groups with replacement instead, and each row counts as often as its group.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        if groups is None:
            yield _draw_counts(rng, size, n)
        else:
            yield _draw_counts(rng, size, int(groups.max()) + 1)[:, groups]


def user_groups(users: Any, n: int, model: str = "model") -> np.ndarray:
    """Dense group codes (0..g-1) of the ``users`` of ``n`` rows, for a user-level bootstrap."""
    codes = np.unique(np.asarray(users).ravel(), return_inverse=True)[1].ravel()
    if codes.size != n:
        raise EvaluationInputError(f"{model}: {codes.size} user ids for {n} rows; one per row")
    return codes


def _bootstrap_aucs(
    y: np.ndarray,
    probs: list[np.ndarray],
    n_boot: int,
    seed: int,
    groups: np.ndarray | None = None,
) -> list[np.ndarray]:
    """AUC per resample for each model, all models scored on the same resampled rows."""
    ranked = [_Ranked.of(y, p) for p in probs]
    parts: list[list[np.ndarray]] = [[] for _ in probs]
    for counts in _resample_counts(y.size, int(n_boot), seed, groups):
        for part, r in zip(parts, ranked, strict=True):
            part.append(r.aucs(counts))
    return [np.concatenate(part) for part in parts]


def _valid(values: np.ndarray, model: str) -> np.ndarray:
    kept = values[~np.isnan(values)]
    if kept.size == 0:
        raise EvaluationInputError(
            f"{model}: every bootstrap resample held a single class; "
            "the test set is too small for a confidence interval"
        )
    return kept


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - float(level)) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_auc_interval(
    labels: Any,
    probs: Any,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    *,
    model: str = "model",
    users: Any = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC; resamples with a single class are skipped.

    ``users`` (one id per row) resamples users instead of rows.
    """
    _check_bootstrap(n_boot, level)
    y, p = _inputs(labels, probs, model)
    groups = None if users is None else user_groups(users, y.size, model)
    (aucs,) = _bootstrap_aucs(y, [p], n_boot, seed, groups)
    return _interval(_valid(aucs, model), level)


def paired_bootstrap_auc_difference(
    labels: Any,
    probs_a: Any,
    probs_b: Any,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    *,
    model_a: str = "model A",
    model_b: str = "model B",
    users: Any = None,
) -> dict[str, float]:
    """Bootstrap of AUC(a) - AUC(b) with both models scored on the same resampled rows.

    Pairing removes the test-set sampling noise the two models share, so the interval is
    narrower than comparing two separate intervals. ``p_a_not_better`` is the share of
    resamples where a's AUC is not above b's (a one-sided bootstrap p-value). ``users`` (one
    id per row) resamples users instead of rows.
    """
    _check_bootstrap(n_boot, level)
    y, p_a = _inputs(labels, probs_a, model_a)
    p_b = check_probabilities(probs_b, y.size, model_b)
    groups = None if users is None else user_groups(users, y.size, model_a)
    aucs_a, aucs_b = _bootstrap_aucs(y, [p_a, p_b], n_boot, seed, groups)
    # Both NaN on the same single-class resamples, since the rows are shared.
    diff = _valid(aucs_a - aucs_b, f"{model_a} vs {model_b}")
    low, high = _interval(diff, level)
    return {
        "mean_difference": float(diff.mean()),
        "ci_low": low,
        "ci_high": high,
        "p_a_not_better": float(np.mean(diff <= 0.0)),
    }


def model_metrics(
    labels: Any,
    probs: Any,
    *,
    model: str = "model",
    threshold: float = 0.5,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    users: Any = None,
) -> dict[str, float | int]:
    """The metrics-document entry of one model: auc, logloss, accuracy, n and the AUC CI.

    With ``users`` (one id per row) the interval resamples users and ``n_users`` is added.
    """
    y, p = _inputs(labels, probs, model)
    low, high = bootstrap_auc_interval(
        y, p, n_boot=n_boot, level=level, seed=seed, model=model, users=users
    )
    entry: dict[str, float | int] = {
        "auc": auc(y, p),
        "logloss": logloss(y, p),
        "accuracy": accuracy(y, p, threshold, model=model),
        "n": int(y.size),
        "auc_ci_low": low,
        "auc_ci_high": high,
    }
    if users is not None:
        entry["n_users"] = int(np.unique(np.asarray(users)).size)
    return entry
