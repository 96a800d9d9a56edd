"""Evaluation figures render to PNG, including degenerate history buckets."""

import io

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reclora_pipeline.evaluation.metrics import EvaluationInputError, auc
from reclora_pipeline.evaluation.plots import (
    auc_by_bucket,
    auc_by_history_bucket_figure,
    gate_heatmap_figure,
    reliability_figure,
    roc_curve,
    roc_figure,
)

RNG = np.random.default_rng(0)
N = 400
LABELS = RNG.integers(0, 2, N)
HISTORY = RNG.integers(0, 90, N)
PROBS = {
    "reclora": np.clip(0.5 + 0.3 * (LABELS - 0.5) + RNG.normal(0, 0.25, N), 0, 1),
    "vanilla_lora": np.round(RNG.random(N), 1),  # ties
    "din": RNG.random(N),
}


def _png(fig: Figure) -> bytes:
    assert isinstance(fig, Figure) and isinstance(fig.canvas, FigureCanvasAgg)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = buffer.getvalue()
    assert data.startswith(b"\x89PNG")
    return data


def test_roc_curve_area_is_the_auc():
    p = PROBS["vanilla_lora"]
    fpr, tpr = roc_curve(LABELS.astype(float), p)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(auc(LABELS, p))


def test_figures_render():
    assert "AUC" in roc_figure(LABELS, PROBS).axes[0].get_legend().get_texts()[0].get_text()
    for fig in (
        roc_figure(LABELS, PROBS),
        reliability_figure(LABELS, PROBS, n_bins=10),
        reliability_figure(LABELS, {"constant": np.ones(N)}),
        gate_heatmap_figure(RNG.random((6, 4)), [f"layers.{i}.q_proj" for i in range(6)]),
        gate_heatmap_figure(RNG.random((30, 20)), [f"l{i}" for i in range(30)]),
        auc_by_history_bucket_figure(LABELS, HISTORY, PROBS),
    ):
        _png(fig)


def test_auc_by_bucket_values_and_missing_buckets():
    labels = np.r_[np.ones(5), LABELS[:50]]
    history = np.r_[np.full(5, 3), np.full(50, 25)]
    probs = RNG.random(55)
    rows = auc_by_bucket(labels, history, probs)
    assert [r["bucket"] for r in rows] == ["0-9", "10-19", "20-39", "40-59", "60+"]
    assert [r["n"] for r in rows] == [5, 0, 50, 0, 0]
    assert rows[0]["auc"] is None and rows[1]["auc"] is None  # one class; empty
    assert rows[2]["auc"] == pytest.approx(auc(labels[5:], probs[5:]))
    assert rows[4]["high"] is None
    _png(auc_by_history_bucket_figure(labels, history, {"a": probs, "b": 1 - probs}))


def test_every_bucket_missing_still_renders():
    _png(auc_by_history_bucket_figure(np.ones(10), np.arange(10), {"a": RNG.random(10)}))


def test_bad_inputs():
    with pytest.raises(EvaluationInputError, match="2 layer names for 3 rows"):
        gate_heatmap_figure(np.ones((3, 2)), ["a", "b"])
    with pytest.raises(EvaluationInputError, match="history lengths"):
        auc_by_bucket(LABELS, HISTORY[:10], PROBS["din"])
    with pytest.raises(EvaluationInputError, match="^din: .*outside"):
        roc_figure(LABELS, {"din": PROBS["din"] * 3})
    with pytest.raises(EvaluationInputError, match="both classes"):
        roc_figure(np.ones(N), PROBS)
