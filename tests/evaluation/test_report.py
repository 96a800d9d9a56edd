"""Metrics document contract and its markdown table."""

import json

import numpy as np
import pytest

from reclora_pipeline.evaluation.report import METRIC_KEYS, metrics_document, metrics_markdown


def _metrics(auc: float) -> dict:
    return {
        "auc": np.float64(auc),
        "logloss": 0.61,
        "accuracy": 0.66,
        "n": np.int64(1000),
        "auc_ci_low": auc - 0.02,
        "auc_ci_high": auc + 0.02,
    }


MODELS = {"din": _metrics(0.74), "vanilla_lora": _metrics(0.71), "reclora": _metrics(0.75)}
COMPARISON = {"mean_difference": 0.04, "ci_low": 0.01, "ci_high": 0.07, "p_a_not_better": 0.004}


def test_document_follows_the_contract_and_is_json():
    doc = metrics_document(MODELS, "file:///tmp/mlruns", "abc123", None)
    assert set(doc) == {"models", "bootstrap_unit", "mlflow_tracking_uri", "mlflow_run_id"}
    assert set(doc["models"]) == set(MODELS)
    assert all(tuple(m) == METRIC_KEYS for m in doc["models"].values())
    assert doc["mlflow_run_id"] == "abc123"
    assert json.loads(json.dumps(doc)) == doc  # numpy scalars became plain numbers
    assert type(doc["models"]["din"]["n"]) is int


def test_document_keeps_comparisons_when_given():
    doc = metrics_document(MODELS, None, None, {"reclora - vanilla_lora": COMPARISON})
    assert doc["comparisons"]["reclora - vanilla_lora"] == COMPARISON


@pytest.mark.parametrize("broken", [{}, {"din": {"auc": 0.7}}])
def test_document_rejects_incomplete_models(broken):
    with pytest.raises(ValueError):
        metrics_document(broken, None, None, None)


def test_markdown_lists_llm_arms_first_with_ci_and_the_paired_difference():
    doc = metrics_document(
        MODELS, "file:///tmp/mlruns", "abc123", {"reclora - vanilla_lora": COMPARISON}
    )
    text = metrics_markdown(doc)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| model | AUC [95% CI] | LogLoss | accuracy | n |")
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["vanilla_lora", "reclora", "din"]
    assert "| reclora | **0.7500** [0.7300, 0.7700] | 0.6100 | 0.6600 | 1000 |" in text
    assert "reclora - vanilla_lora: +0.0400 [95% CI +0.0100, +0.0700]" in text
    assert "P(first not better) = 0.004" in text
    assert "abc123" in text


def test_markdown_without_comparisons_or_run():
    text = metrics_markdown(metrics_document({"din": _metrics(0.7)}, None, None, None), level=0.9)
    assert "AUC [90% CI]" in text and "difference" not in text and "MLflow" not in text
