"""Thin evaluation nodes: scoring and comparison through the evaluation library, MLflow
logging when kedro-mlflow has started a run.

The base model and prompt length come from the finetune reports (what the arms were
trained with), not from the finetune parameters, so evaluation reads only its own group.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.evaluation import lens_readout, plots
from reclora_pipeline.evaluation.comparison import FIGURES, compare, model_probabilities
from reclora_pipeline.evaluation.llm_scoring import (
    BaseModel,
    compute_report,
    gate_summary,
    score_adapter,
    score_base_model,
)
from reclora_pipeline.evaluation.rows import labelled_rows, no_predictions
from reclora_pipeline.evaluation.settings import EvaluationSettings

logger = logging.getLogger(__name__)


def score_zero_shot(
    few2many_samples: DuckDBTable,
    finetune_report_reclora: dict[str, Any],
    settings: EvaluationSettings,
) -> pa.Table:
    """P(Yes) of the base LLM, without any adapter, on the test subset."""
    # reclora is trained on every run: its report names the base model.
    base = BaseModel.of(finetune_report_reclora, "reclora")
    return score_base_model(few2many_samples, base, settings)


def score_arm(
    few2many_samples: DuckDBTable,
    adapter: Path,
    finetune_report: dict[str, Any],
    settings: EvaluationSettings,
    arm: str,
) -> pa.Table:
    """P(Yes) of a fine-tuned arm from its persisted adapter; no rows if it was not trained."""
    if not finetune_report.get("trained", False):
        logger.info("%s was not trained (finetune.ablations): nothing to score", arm)
        return no_predictions()
    base = BaseModel.of(finetune_report, arm)
    return score_adapter(few2many_samples, adapter, arm, base, settings)


def score_lens_readout(few2many_samples: DuckDBTable, settings: EvaluationSettings) -> pa.Table:
    """P(Yes) of a logistic regression on the lens vectors RecLoRA's gates read, fit on the
    LLM's train rows: what those rows learn from the lens without a language model."""
    return lens_readout.score_lens_readout(few2many_samples, settings.lens_readout_l2)


def summarize_gates(
    few2many_samples: DuckDBTable, adapter_reclora: Path, finetune_report_reclora: dict[str, Any]
) -> dict[str, Any]:
    """RecLoRA's mean gate weight per adapted layer and expert over the test users."""
    base = BaseModel.of(finetune_report_reclora, "reclora")
    return gate_summary(few2many_samples, adapter_reclora, base)


def compare_models(
    few2many_samples: DuckDBTable,
    crm_predictions: DuckDBTable,
    settings: EvaluationSettings,
    *predictions: DuckDBTable,
    names: tuple[str, ...],
) -> tuple[dict[str, Any], str, Figure, Figure, Figure]:
    """metrics.json, metrics.md and the comparison plots, all on the same test rows.

    ``predictions`` are the LLMs' and baselines' prediction tables, one per name in ``names``.
    """
    test = labelled_rows(few2many_samples)
    llm_predictions = {name: table.arrow() for name, table in zip(names, predictions, strict=True)}
    probs = model_probabilities(
        test.column("sample_id").to_numpy(), llm_predictions, crm_predictions.arrow(), settings.crms
    )
    result = compare(test, probs, settings, _mlflow_run())
    result.document["compute"] = compute_report(settings)
    for name, entry in result.document["models"].items():
        logger.info("%-22s AUC %.4f [%.4f, %.4f]  LogLoss %.4f", name, entry["auc"],
                    entry["auc_ci_low"], entry["auc_ci_high"], entry["logloss"])  # fmt: skip
    roc, reliability, by_history = result.figures
    return result.document, result.markdown, roc, reliability, by_history


def plot_gates(gate_weights: dict[str, Any]) -> Figure:
    """Heatmap of RecLoRA's mean gate weights (layers x experts) over the test users."""
    return plots.gate_heatmap_figure(np.asarray(gate_weights["weights"]), gate_weights["layers"])


def _mlflow_run() -> tuple[str | None, str | None]:
    """Tracking URI and id of the active MLflow run (kedro-mlflow starts one per kedro run)."""
    run = mlflow.active_run()
    return (mlflow.get_tracking_uri(), run.info.run_id) if run else (None, None)


def log_to_mlflow(metrics: dict[str, Any], metrics_table: str, *figures: bytes) -> None:
    """Per-model AUC / LogLoss / accuracy, the table and the plots into the active MLflow run.

    A tracking store that fails here costs the MLflow copy only: the reports are on disk.
    """
    if mlflow.active_run() is None:
        logger.info("no active MLflow run: metrics stay in data/08_reporting only")
        return
    try:
        for name, entry in metrics["models"].items():
            mlflow.log_metrics({f"{name}.{key}": float(value) for key, value in entry.items()})
        mlflow.log_text(metrics_table, "metrics.md")
        mlflow.log_dict(metrics, "metrics.json")
        with tempfile.TemporaryDirectory() as folder:
            for name, png in zip((*FIGURES, "gate_heatmap"), figures, strict=True):
                path = Path(folder) / f"{name}.png"
                path.write_bytes(png)
                mlflow.log_artifact(str(path), artifact_path="plots")
    except Exception as error:  # noqa: BLE001 - MLflow is a copy; never fail the run for it
        logger.warning("could not log to MLflow (%s); the reports are in data/08_reporting", error)
