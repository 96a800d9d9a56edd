"""AUC (tie-aware, via ranks) and LogLoss against direct definitions."""

import numpy as np
import pytest

from reclora_pipeline.ctr.metrics import auc, average_ranks, logloss


def _pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def test_average_ranks_share_ties():
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_the_pairwise_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = rng.integers(0, 8, 300).astype(float) + 0.3 * y  # many ties, some signal
    assert auc(y, s) == pytest.approx(_pairwise_auc(y, s), abs=1e-12)


def test_auc_extremes_and_errors():
    y = np.array([0, 0, 1, 1])
    assert auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert auc(y, np.full(4, 0.5)) == 0.5
    with pytest.raises(ValueError, match="both"):
        auc(np.ones(3), np.arange(3.0))
    with pytest.raises(ValueError, match="NaN"):
        auc(y, np.array([0.1, np.nan, 0.2, 0.3]))


def test_logloss_matches_the_formula_and_clips():
    y = np.array([1, 0, 1])
    p = np.array([0.9, 0.2, 0.6])
    expected = -(np.log(0.9) + np.log(0.8) + np.log(0.6)) / 3
    assert logloss(y, p) == pytest.approx(expected)
    assert np.isfinite(logloss(np.array([1, 0]), np.array([0.0, 1.0])))
