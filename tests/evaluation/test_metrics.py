"""Evaluation metrics: hand-computed values, bootstrap intervals, paired comparison, input checks."""

import math

import numpy as np
import pytest

from reclora_pipeline.errors import ParameterError, UserInputError
from reclora_pipeline.evaluation.metrics import (
    EvaluationInputError,
    _Ranked,
    _resample_counts,
    accuracy,
    auc,
    bootstrap_auc_interval,
    logloss,
    model_metrics,
    paired_bootstrap_auc_difference,
    user_groups,
)

Y = np.array([0, 0, 1, 1])
P = np.array([0.1, 0.6, 0.4, 0.9])


def _data(n: int, signal: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.clip(0.5 + signal * (y - 0.5) + rng.normal(0, 0.25, n), 0, 1)


def test_hand_computed_values():
    # Positive 0.4 beats negative 0.1 only, positive 0.9 beats both: 3 of 4 pairs.
    assert auc(Y, P) == pytest.approx(0.75)
    assert logloss(Y, P) == pytest.approx(-(math.log(0.9) + math.log(0.4)) / 2)
    assert accuracy(Y, P) == pytest.approx(0.5)  # predictions 0, 1, 0, 1
    assert accuracy(Y, P, threshold=0.05) == pytest.approx(0.5)
    assert accuracy(np.array([0, 1]), np.array([0.49, 0.5])) == 1.0  # p == threshold is positive


def test_model_metrics_has_exactly_the_contract_keys():
    y, p = _data(300, 0.4)
    m = model_metrics(y, p, model="reclora", n_boot=200)
    assert list(m) == ["auc", "logloss", "accuracy", "n", "auc_ci_low", "auc_ci_high"]
    assert m["n"] == 300 and isinstance(m["n"], int)
    assert all(isinstance(m[k], float) for k in m if k != "n")
    assert m["auc"] == pytest.approx(auc(y, p))
    assert m["auc_ci_low"] <= m["auc"] <= m["auc_ci_high"]


@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_resample_auc_equals_auc_of_copied_rows(seed):
    y, p = _data(200, 0.3, seed)
    p = np.round(p, 1)  # many ties
    counts = next(_resample_counts(y.size, 5, seed))
    rows = [np.repeat(np.arange(y.size), c) for c in counts]
    expected = [auc(y[r], p[r]) for r in rows]
    assert _Ranked.of(y.astype(float), p).aucs(counts) == pytest.approx(expected, abs=1e-12)


def test_interval_contains_the_estimate_narrows_with_n_and_is_reproducible():
    widths = []
    for n in (200, 2000):
        y, p = _data(n, 0.3)
        low, high = bootstrap_auc_interval(y, p, n_boot=500)
        assert low < auc(y, p) < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2
    y, p = _data(200, 0.3)
    assert bootstrap_auc_interval(y, p, n_boot=300, seed=7) == bootstrap_auc_interval(
        y, p, n_boot=300, seed=7
    )


def test_interval_skips_single_class_resamples():
    low, high = bootstrap_auc_interval([0, 1, 1], [0.2, 0.7, 0.9], n_boot=200)
    assert 0.0 <= low <= high <= 1.0


def test_paired_difference_of_identical_models_is_zero():
    y, p = _data(500, 0.3)
    d = paired_bootstrap_auc_difference(y, p, p, n_boot=300)
    assert set(d) == {"mean_difference", "ci_low", "ci_high", "p_a_not_better"}
    assert d["mean_difference"] == pytest.approx(0.0, abs=1e-12)
    assert d["ci_low"] <= 0.0 <= d["ci_high"]


def test_paired_difference_finds_a_clearly_better_model():
    y, weak = _data(500, 0.1)
    strong = np.clip(weak + 0.3 * (y - 0.5), 0, 1)
    d = paired_bootstrap_auc_difference(y, strong, weak, n_boot=300)
    assert d["mean_difference"] == pytest.approx(auc(y, strong) - auc(y, weak), abs=0.01)
    assert d["ci_low"] > 0.0 and d["p_a_not_better"] < 0.01
    reverse = paired_bootstrap_auc_difference(y, weak, strong, n_boot=300)
    assert reverse["ci_high"] < 0.0 and reverse["p_a_not_better"] > 0.99


@pytest.mark.parametrize(
    ("labels", "probs", "message"),
    [
        (None, [0.5, 0.5], "labels are missing"),
        ([], [], "labels are missing"),
        ([0, np.nan, 1], [0.1, 0.2, 0.3], "missing \\(NaN\\)"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "must be 0 or 1, found 2"),
        ([1, 1, 1], [0.1, 0.2, 0.3], "without both classes cannot be scored by AUC"),
        ([0, 1, 1], [0.1, 1.2, 0.3], "outside \\[0, 1\\]"),
        ([0, 1, 1], [0.1, -3.0, 0.3], "outside \\[0, 1\\]"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "NaN"),
        ([0, 1, 1], [0.1, 0.3], "2 probabilities for 3 labels"),
        ([0, 1, 1], None, "probabilities are missing"),
    ],
)
def test_bad_inputs_name_the_model(labels, probs, message):
    for score in (
        lambda: model_metrics(labels, probs, model="vanilla_lora", n_boot=10),
        lambda: accuracy(labels, probs, model="vanilla_lora"),
        lambda: bootstrap_auc_interval(labels, probs, n_boot=10, model="vanilla_lora"),
    ):
        with pytest.raises(EvaluationInputError, match=message) as raised:
            score()
        assert "vanilla_lora" in str(raised.value)
        assert isinstance(raised.value, UserInputError)


def test_paired_bad_probabilities_name_the_second_model():
    with pytest.raises(EvaluationInputError, match="^vanilla_lora: 2 probabilities"):
        paired_bootstrap_auc_difference(
            Y, P, [0.1, 0.2], n_boot=10, model_a="reclora", model_b="vanilla_lora"
        )


@pytest.mark.parametrize(("n_boot", "level"), [(0, 0.95), (100, 1.0), (100, 0.0)])
def test_bad_bootstrap_settings(n_boot, level):
    with pytest.raises(ParameterError):
        bootstrap_auc_interval(Y, P, n_boot=n_boot, level=level)


def _clustered(n_users: int, rows_per_user: int, seed: int = 0):
    """Labels and scores where each user's rows share a user effect: not independent rows."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), rows_per_user)
    taste = rng.normal(0, 1, n_users)[users]
    y = (taste + rng.normal(0, 0.5, users.size) > 0).astype(int)
    p = 1 / (1 + np.exp(-(taste + rng.normal(0, 1.0, users.size))))
    return y, p, users


def test_user_level_counts_repeat_whole_users():
    users = np.array([7, 7, 7, 3, 3, 9])
    groups = user_groups(users, 6)
    for counts in next(_resample_counts(6, 50, 0, groups)):
        # Rows of one user are drawn together: equal multiplicities within a user.
        assert counts[0] == counts[1] == counts[2] and counts[3] == counts[4]
        # Three users drawn with replacement: the user multiplicities sum to 3.
        assert counts[0] + counts[3] + counts[5] == 3


def test_user_level_interval_is_wider_than_the_row_interval_for_clustered_rows():
    y, p, users = _clustered(n_users=40, rows_per_user=10)
    row_low, row_high = bootstrap_auc_interval(y, p, n_boot=400)
    user_low, user_high = bootstrap_auc_interval(y, p, n_boot=400, users=users)
    assert user_high - user_low > 1.3 * (row_high - row_low)
    m = model_metrics(y, p, n_boot=100, users=users)
    assert m["n_users"] == 40 and list(m)[-1] == "n_users"


def test_user_level_bootstrap_of_one_row_per_user_is_the_row_bootstrap():
    y, p = _data(120, 0.3)
    users = np.arange(120) * 3 + 5  # every row its own user, ids not dense
    assert bootstrap_auc_interval(y, p, n_boot=200, seed=4, users=users) == pytest.approx(
        bootstrap_auc_interval(y, p, n_boot=200, seed=4)
    )


def test_paired_user_level_difference_and_a_wrong_number_of_users():
    y, p, users = _clustered(n_users=30, rows_per_user=8)
    d = paired_bootstrap_auc_difference(y, p, p, n_boot=100, users=users)
    assert d["mean_difference"] == 0.0 and d["p_a_not_better"] == 1.0
    with pytest.raises(EvaluationInputError, match="3 user ids for 240 rows"):
        bootstrap_auc_interval(y, p, n_boot=10, users=[1, 2, 3])
