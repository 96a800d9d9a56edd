"""The ``lens_readout`` baseline: what the LLM's training rows can learn from the lens alone.

RecLoRA's gates read the frozen CRM's user representation (``user_repr``). A logistic
regression on those same vectors, fit on the same Few2Many train rows the LLM trains on,
shows how much of RecLoRA's AUC the lens vectors give without any language model. Its L2
strength is chosen on the valid rows (the LLM's early-stopping rows), never on test.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.evaluation.rows import predictions_table, rows_to_score
from reclora_pipeline.finetune.run import subset

if TYPE_CHECKING:  # only an annotation: the module imports without DuckDB
    from reclora_pipeline.duckdb_store import DuckDBTable

logger = logging.getLogger(__name__)

# Newton steps stop when the largest weight change is below this.
_TOLERANCE = 1e-8
_MAX_STEPS = 100


@dataclass(frozen=True)
class LensReadout:
    """A fitted readout: standardisation, weights, and how its L2 strength was chosen."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # [dim + 1], the last entry is the bias
    l2: float
    valid_auc: float
    n_train: int

    def predict(self, vectors: np.ndarray) -> np.ndarray:
        """P(label = 1) of each row of ``vectors``."""
        return _sigmoid(_design(vectors, self.mean, self.scale) @ self.weights)

    def facts(self) -> dict[str, float | int]:
        """What the report says about the fit."""
        return {"l2": self.l2, "valid_auc": self.valid_auc, "n_train": self.n_train}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


def _design(vectors: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    standardized = (np.asarray(vectors, dtype=np.float64) - mean) / scale
    return np.hstack([standardized, np.ones((len(standardized), 1))])


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Weights of an L2-penalised logistic regression (bias unpenalised), by Newton's method.

    Minimises the summed log loss plus ``l2 / 2 * |w|^2`` over the columns but the last.
    """
    penalty = np.full(x.shape[1], float(l2))
    # The bias is not penalised; a tiny ridge keeps the Hessian invertible all the same.
    penalty[-1] = 1e-9
    weights = np.zeros(x.shape[1])
    for _ in range(_MAX_STEPS):
        p = _sigmoid(x @ weights)
        gradient = x.T @ (p - y) + penalty * weights
        hessian = (x * (p * (1.0 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < _TOLERANCE:
            break
    return weights


def fit_lens_readout(
    train_vectors: np.ndarray,
    train_labels: np.ndarray,
    valid_vectors: np.ndarray,
    valid_labels: np.ndarray,
    l2_grid: Sequence[float],
) -> LensReadout:
    """Fit one readout per L2 strength on the train rows; keep the best on the valid rows.

    Ties on valid AUC go to the stronger penalty (the simpler model).
    """
    y_train = np.asarray(train_labels, dtype=np.float64)
    y_valid = np.asarray(valid_labels, dtype=np.float64)
    for name, y in (("train", y_train), ("valid", y_valid)):
        if y.size == 0 or y.min() == y.max():
            raise UserInputError(
                f"lens_readout needs both labels among the Few2Many {name} rows; "
                f"they have {int(y.sum())} positive of {y.size}"
            )
    train = np.asarray(train_vectors, dtype=np.float64)
    mean = train.mean(axis=0)
    # Constant columns (dead units of the CRM's ReLU layer) keep scale 1 instead of 0.
    scale = np.where(train.std(axis=0) > 1e-12, train.std(axis=0), 1.0)
    x_train, x_valid = _design(train, mean, scale), _design(valid_vectors, mean, scale)
    best: LensReadout | None = None
    for l2 in sorted(l2_grid, reverse=True):
        weights = fit_logistic(x_train, y_train, l2)
        valid_auc = auc(y_valid, _sigmoid(x_valid @ weights))
        if best is None or valid_auc > best.valid_auc:
            best = LensReadout(mean, scale, weights, float(l2), valid_auc, int(y_train.size))
    assert best is not None  # the settings require a non-empty grid
    return best


def score_lens_readout(few2many_samples: DuckDBTable, l2_grid: Sequence[float]) -> pa.Table:
    """P(Yes) of the lens readout on the test rows, fit on the Few2Many train rows."""
    rows = few2many_samples.arrow()
    # reclora's view of the rows: its gate reads exactly these user_repr vectors.
    train, valid = subset(rows, "train", "reclora"), subset(rows, "valid", "reclora")
    readout = fit_lens_readout(
        train.user_repr.numpy(), train.labels, valid.user_repr.numpy(), valid.labels, l2_grid
    )
    logger.info(
        "lens_readout: logistic regression on %d user_repr vectors, l2 %g (valid AUC %.4f)",
        readout.n_train, readout.l2, readout.valid_auc,
    )  # fmt: skip
    test, sample_ids = rows_to_score(few2many_samples, "reclora")
    return predictions_table(sample_ids, readout.predict(test.user_repr.numpy()))
