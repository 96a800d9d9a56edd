"""Every model compared on the same test rows: alignment, metrics, paired comparisons."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.evaluation.comparison import (
    FIGURES,
    aligned,
    compare,
    model_probabilities,
)
from reclora_pipeline.evaluation.rows import no_predictions, predictions_table
from reclora_pipeline.evaluation.settings import EvaluationSettings

N = 40
SETTINGS = EvaluationSettings(n_bootstrap=30, crms=("din", "sim"), history_buckets=(0, 10))


def _test_rows() -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table({
        "sample_id": pa.array(np.arange(100, 100 + N), pa.int64()),
        "user_id": pa.array(np.arange(N) // 4, pa.int64()),  # 10 users of 4 rows
        "label": pa.array(np.tile([0, 1], N // 2), pa.int64()),
        "history_length": pa.array(rng.integers(1, 30, N), pa.int64()),
    })  # fmt: skip


def _shuffled_predictions(test: pa.Table, probs: np.ndarray, seed: int) -> pa.Table:
    order = np.random.default_rng(seed).permutation(N)
    return predictions_table(test.column("sample_id").to_numpy()[order], probs[order])


def _inputs() -> tuple[pa.Table, dict[str, pa.Table], pa.Table]:
    test = _test_rows()
    labels = test.column("label").to_numpy()
    rng = np.random.default_rng(1)
    llm = {
        "zero_shot": _shuffled_predictions(test, rng.random(N), 1),
        "reclora": _shuffled_predictions(test, 0.6 * labels + 0.4 * rng.random(N), 2),
        "vanilla_lora": _shuffled_predictions(test, 0.3 * labels + 0.7 * rng.random(N), 3),
        "reclora_no_lens": no_predictions(),  # an ablation that was not trained
    }
    crm = pa.table({
        "sample_id": test.column("sample_id"),
        "din": 0.5 * labels + 0.5 * rng.random(N),
        "sim": rng.random(N),
        "deepfm": rng.random(N),
    })  # fmt: skip
    return test, llm, crm


def test_aligned_follows_the_test_order():
    table = predictions_table(np.array([3, 1, 2]), np.array([0.3, 0.1, 0.2]))
    assert aligned("m", np.array([1, 2, 3]), table, "probability").tolist() == [0.1, 0.2, 0.3]
    with pytest.raises(UserInputError, match=r"m has no score for 1 test samples .*sample_id 4"):
        aligned("m", np.array([1, 4]), table, "probability")


def test_model_probabilities_skip_untrained_arms_and_take_the_listed_crms():
    test, llm, crm = _inputs()
    probs = model_probabilities(test.column("sample_id").to_numpy(), llm, crm, SETTINGS.crms)
    assert list(probs) == ["zero_shot", "reclora", "vanilla_lora", "din", "sim"]
    assert all(p.shape == (N,) for p in probs.values())
    with pytest.raises(UserInputError, match="evaluation.crms has 'sim', which crm_predictions"):
        model_probabilities(test.column("sample_id").to_numpy(), llm, crm.drop(["sim"]), ["sim"])


def test_compare_writes_the_metrics_document_table_and_figures():
    test, llm, crm = _inputs()
    probs = model_probabilities(test.column("sample_id").to_numpy(), llm, crm, SETTINGS.crms)
    result = compare(test, probs, SETTINGS, ("file:///mlruns", "run1"))
    document = result.document
    assert list(document["models"]) == list(probs)
    assert all(entry["n"] == N for entry in document["models"].values())
    assert all(entry["n_users"] == N // 4 for entry in document["models"].values())
    assert document["bootstrap_unit"] == "user"
    assert "user-level bootstrap" in result.markdown
    assert (document["mlflow_tracking_uri"], document["mlflow_run_id"]) == (
        "file:///mlruns",
        "run1",
    )
    # The first CRM is the bar; pairs with a missing model are left out.
    pairs = ["reclora - vanilla_lora", "reclora - zero_shot", "vanilla_lora - zero_shot"]
    assert list(document["comparisons"]) == [*pairs, "reclora - din"]
    assert document["models"]["reclora"]["auc"] > document["models"]["zero_shot"]["auc"]
    assert "| reclora |" in result.markdown.replace("**", "")
    assert "95% CI" in result.markdown
    assert len(result.figures) == len(FIGURES)


def test_compare_is_reproducible_for_a_seed():
    test, llm, crm = _inputs()
    probs = model_probabilities(test.column("sample_id").to_numpy(), llm, crm, SETTINGS.crms)
    assert compare(test, probs, SETTINGS).document == compare(test, probs, SETTINGS).document


def test_row_bootstrap_is_a_setting_and_reports_no_user_count():
    test, llm, crm = _inputs()
    probs = model_probabilities(test.column("sample_id").to_numpy(), llm, crm, SETTINGS.crms)
    settings = EvaluationSettings(
        n_bootstrap=30, crms=("din", "sim"), history_buckets=(0, 10), bootstrap_unit="row"
    )
    document = compare(test, probs, settings).document
    assert document["bootstrap_unit"] == "row"
    assert all("n_users" not in entry for entry in document["models"].values())
