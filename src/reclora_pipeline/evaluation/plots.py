"""Evaluation figures: ROC, reliability, mean gate weights and AUC by history length.

Figures are built as ``matplotlib.figure.Figure`` on an Agg canvas, never through pyplot: no
display is needed, nothing is registered globally, so a figure is freed once the caller drops
it (after ``fig.savefig``) and the caller's pyplot backend, e.g. in a notebook, is untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reclora_pipeline.evaluation.metrics import (
    EvaluationInputError,
    auc,
    check_labels,
    check_probabilities,
)

__all__ = [
    "DEFAULT_HISTORY_EDGES",
    "auc_by_bucket",
    "auc_by_history_bucket_figure",
    "gate_heatmap_figure",
    "reliability_figure",
    "roc_curve",
    "roc_figure",
]

# Buckets [0, 10), [10, 20), [20, 40), [40, 60), [60, inf) of a user's history length.
DEFAULT_HISTORY_EDGES = (0, 10, 20, 40, 60)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig


def _scored(
    labels: Any, probs_by_model: Mapping[str, Any], *, both_classes: bool = True
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if not probs_by_model:
        raise EvaluationInputError("no model predictions to plot")
    y = check_labels(labels, "labels", both_classes=both_classes)
    return y, {name: check_probabilities(p, y.size, name) for name, p in probs_by_model.items()}


def roc_curve(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-probs, kind="stable")
    p, y = probs[order], labels[order]
    # Only the last row of a tied group is a threshold: ties move the curve diagonally.
    last = np.r_[p[1:] != p[:-1], True]
    tp = np.cumsum(y)[last]
    fp = np.cumsum(1.0 - y)[last]
    return np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]]


def roc_figure(labels: Any, probs_by_model: Mapping[str, Any]) -> Figure:
    """ROC curves of all models on one axes, each model's AUC in the legend."""
    y, probs = _scored(labels, probs_by_model)
    fig = _figure(5.5, 5.0)
    ax = fig.subplots()
    for name, p in probs.items():
        fpr, tpr = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(y, p):.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="random")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test set)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def reliability_figure(labels: Any, probs_by_model: Mapping[str, Any], n_bins: int = 10) -> Figure:
    """Calibration curves over ``n_bins`` equal-width bins, with the prediction histogram below."""
    if int(n_bins) < 1:
        raise EvaluationInputError(f"n_bins={n_bins!r} must be a positive number of bins")
    y, probs = _scored(labels, probs_by_model, both_classes=False)
    fig = _figure(5.5, 6.5)
    curve, hist = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    curve.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    for name, p in probs.items():
        # p == 1.0 belongs to the last bin, not to an extra one.
        bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
        counts = np.bincount(bins, minlength=n_bins)
        kept = counts > 0  # empty bins have no observed rate
        mean_p = np.bincount(bins, weights=p, minlength=n_bins)[kept] / counts[kept]
        rate = np.bincount(bins, weights=y, minlength=n_bins)[kept] / counts[kept]
        (line,) = curve.plot(mean_p, rate, marker="o", label=name)
        hist.stairs(counts, edges, color=line.get_color())
    curve.set(ylabel="observed positive rate", title="Reliability (test set)")
    curve.set_xlim(0, 1)
    curve.set_ylim(0, 1)
    curve.legend(loc="upper left", fontsize="small")
    hist.set(xlabel="predicted probability", ylabel="rows")
    return fig


def gate_heatmap_figure(weights: Any, layer_names: Sequence[str]) -> Figure:
    """Heatmap of the mean gate weight per [layer, expert] over the test users."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.size == 0:
        raise EvaluationInputError(
            f"gate weights must be a [layers, experts] matrix, got {w.shape}"
        )
    if len(layer_names) != w.shape[0]:
        raise EvaluationInputError(
            f"{len(layer_names)} layer names for {w.shape[0]} rows of gate weights"
        )
    if not np.isfinite(w).all():
        raise EvaluationInputError("gate weights contain NaN or infinite values")
    layers, experts = w.shape
    fig = _figure(max(4.0, 0.6 * experts + 3.0), max(3.0, 0.3 * layers + 1.5))
    ax = fig.subplots()
    image = ax.imshow(w, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="mean gate weight")
    ax.set_xticks(range(experts), [str(k) for k in range(experts)])
    ax.set_yticks(range(layers), [str(name) for name in layer_names], fontsize="small")
    ax.set(xlabel="expert (LoRA)", title="Mean gate weight over test users")
    if w.size <= 400:  # numbers stay legible only on small grids
        middle = (w.min() + w.max()) / 2.0
        for (i, j), value in np.ndenumerate(w):
            color = "black" if value > middle else "white"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    return fig


def _bucket_label(low: float, high: float | None) -> str:
    if high is None:
        return f"{low:g}+"
    if float(low).is_integer() and float(high).is_integer():
        return f"{low:g}" if high - low == 1 else f"{low:g}-{high - 1:g}"
    return f"[{low:g}, {high:g})"


def _history(history_length: Any, n: int, edges: Sequence[float]) -> np.ndarray:
    try:
        h = np.asarray(history_length, dtype=np.float64).ravel()
    except (TypeError, ValueError) as error:
        raise EvaluationInputError(f"history lengths are not numbers ({error})") from error
    if h.size != n:
        raise EvaluationInputError(f"{h.size} history lengths for {n} labels; need one per row")
    if np.isnan(h).any():
        raise EvaluationInputError("history lengths contain NaN")
    if len(edges) == 0 or np.any(np.diff(edges) <= 0):
        raise EvaluationInputError(f"bucket edges must be increasing, got {tuple(edges)}")
    return h


def auc_by_bucket(
    labels: Any,
    history_length: Any,
    probs: Any,
    edges: Sequence[float] = DEFAULT_HISTORY_EDGES,
    *,
    model: str = "model",
) -> list[dict[str, Any]]:
    """AUC per history-length bucket [edges[i], edges[i+1]), the last one open-ended.

    Each entry: bucket (label), low, high (None when open), n, n_positive, auc (None when the
    bucket lacks a class). Rows below ``edges[0]`` fall in no bucket.
    """
    y = check_labels(labels, model, both_classes=False)
    p = check_probabilities(probs, y.size, model)
    h = _history(history_length, y.size, edges)
    bounds = [*edges[1:], None]
    rows = []
    for low, high in zip(edges, bounds, strict=True):
        inside = (h >= low) if high is None else (h >= low) & (h < high)
        yb = y[inside]
        n_positive = int(yb.sum())
        both = 0 < n_positive < yb.size
        rows.append(
            {
                "bucket": _bucket_label(low, high),
                "low": low,
                "high": high,
                "n": int(yb.size),
                "n_positive": n_positive,
                "auc": auc(yb, p[inside]) if both else None,
            }
        )
    return rows


def auc_by_history_bucket_figure(
    labels: Any,
    history_length: Any,
    probs_by_model: Mapping[str, Any],
    edges: Sequence[float] = DEFAULT_HISTORY_EDGES,
) -> Figure:
    """Grouped bars of AUC per history-length bucket; a bucket with one class shows "n/a"."""
    y, probs = _scored(labels, probs_by_model, both_classes=False)
    table = {
        name: auc_by_bucket(y, history_length, p, edges, model=name) for name, p in probs.items()
    }
    first = next(iter(table.values()))
    x = np.arange(len(first))
    width = 0.8 / len(table)
    values = [r["auc"] for rows in table.values() for r in rows if r["auc"] is not None]
    bottom = min([0.5, *values]) - 0.05
    top = min(1.0, max([0.5, *values]) + 0.05)
    fig = _figure(max(6.0, 1.2 * len(x) + 0.4 * len(table) + 2.0), 4.5)
    ax = fig.subplots()
    for k, (name, rows) in enumerate(table.items()):
        offset = x - 0.4 + width * (k + 0.5)
        heights = np.array([np.nan if r["auc"] is None else r["auc"] for r in rows])
        ax.bar(offset, heights - bottom, width, bottom=bottom, label=name)
        for xi, h in zip(offset, heights, strict=True):
            if np.isnan(h):  # missing, not zero: a one-class bucket has no AUC
                ax.text(
                    xi, bottom + 0.005, "n/a", ha="center", va="bottom", fontsize=7, rotation=90
                )
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(x, [f"{r['bucket']}\n(n={r['n']})" for r in first])
    ax.set_xlim(-0.5, len(x) - 0.5)  # keep empty buckets in view: only drawn bars autoscale
    ax.set_ylim(bottom, top)
    ax.set(xlabel="history length", ylabel="AUC", title="AUC by history length (test set)")
    ax.legend(fontsize="small", ncols=min(len(table), 4))
    return fig
