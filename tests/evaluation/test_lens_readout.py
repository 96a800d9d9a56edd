"""The lens_readout baseline: a logistic regression on user_repr, its L2 chosen on valid."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.evaluation.lens_readout import (
    fit_lens_readout,
    fit_logistic,
    score_lens_readout,
)


def _linear_data(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectors whose first unit carries the label (a CRM's logit), plus a dead unit."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, dim))
    x[:, -1] = 3.0  # a ReLU unit that never fires: constant
    y = (x[:, 0] + 0.5 * rng.normal(0, 1, n) > 0).astype(int)
    return x, y


def test_fit_logistic_reaches_the_penalised_optimum():
    x, y = _linear_data(200, 4, 0)
    design = np.hstack([x[:, :3], np.ones((200, 1))])
    weights = fit_logistic(design, y.astype(float), l2=2.0)
    p = 1 / (1 + np.exp(-design @ weights))
    gradient = design.T @ (p - y) + np.r_[2.0 * weights[:3], 0.0]
    assert np.abs(gradient).max() < 1e-5
    # A stronger penalty shrinks the weights.
    assert (
        np.abs(fit_logistic(design, y.astype(float), l2=200.0)[:3]).sum()
        < np.abs(weights[:3]).sum()
    )


def test_readout_learns_the_informative_unit_and_picks_l2_on_valid():
    x, y = _linear_data(300, 16, 1)
    xv, yv = _linear_data(200, 16, 2)
    xt, yt = _linear_data(400, 16, 3)
    readout = fit_lens_readout(x, y, xv, yv, [0.1, 10.0, 1000.0])
    assert readout.l2 in (0.1, 10.0, 1000.0) and readout.n_train == 300
    assert readout.valid_auc == pytest.approx(auc(yv, readout.predict(xv)))
    assert auc(yt, readout.predict(xt)) > 0.9
    assert np.isfinite(readout.predict(xt)).all()
    assert readout.facts() == {"l2": readout.l2, "valid_auc": readout.valid_auc, "n_train": 300}


def test_readout_prefers_the_stronger_penalty_on_a_tie():
    x, y = _linear_data(100, 4, 4)
    # Only the informative unit and dead ones: every penalty ranks the valid rows alike.
    x[:, 1:] = 0.0
    xv, yv = _linear_data(80, 4, 5)
    xv[:, 1:] = 0.0
    assert fit_lens_readout(x, y, xv, yv, [0.1, 1.0, 10.0]).l2 == 10.0


def test_readout_needs_both_labels():
    x, y = _linear_data(50, 4, 6)
    with pytest.raises(UserInputError, match="Few2Many train rows; they have 0 positive of 50"):
        fit_lens_readout(x, np.zeros(50), x, y, [1.0])


def test_score_lens_readout_scores_every_test_row():
    x, y = _linear_data(90, 6, 7)
    subsets = ["train"] * 40 + ["valid"] * 20 + ["test"] * 30
    table = pa.table({
        "sample_id": pa.array(np.arange(90)[::-1], pa.int64()),
        "subset": subsets,
        "label": pa.array(y, pa.int64()),
        "prompt": ["p"] * 90,
        "recency_prompt": ["r"] * 90,
        "answer": ["Yes"] * 90,
        "user_repr": [row.tolist() for row in x],
        "user_id": pa.array(np.arange(90) % 7, pa.int64()),
    })  # fmt: skip
    connection = duckdb.connect()
    connection.register("source", table)
    connection.execute("CREATE TABLE few2many_samples AS SELECT * FROM source")
    predictions = score_lens_readout(DuckDBTable(connection, "few2many_samples"), [1.0, 10.0])
    test_ids = sorted(np.arange(90)[::-1][60:].tolist())
    assert predictions.column("sample_id").to_pylist() == test_ids
    probs = predictions.column("probability").to_numpy()
    assert ((probs > 0) & (probs < 1)).all()
    labels = dict(zip(np.arange(90)[::-1].tolist(), y.tolist(), strict=True))
    assert auc(np.array([labels[s] for s in test_ids]), probs) > 0.8
