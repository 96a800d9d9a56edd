"""Thin evaluation nodes: scoring through the finetune library, metrics and plots through
the evaluation library, MLflow logging when kedro-mlflow has started a run."""

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
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.evaluation import plots
from reclora_pipeline.evaluation.gates import mean_gate_weights
from reclora_pipeline.evaluation.metrics import model_metrics, paired_bootstrap_auc_difference
from reclora_pipeline.evaluation.report import metrics_document, metrics_markdown
from reclora_pipeline.finetune.adapters import load_arm
from reclora_pipeline.finetune.arms import ARMS
from reclora_pipeline.finetune.run import Subset, score, subset
from reclora_pipeline.finetune.scoring import score_prompts
from reclora_pipeline.item_text.language_model import load_causal_lm

LLM_MODELS = ("zero_shot", *ARMS)
# Figures of compare_models, in its output order.
FIGURES = ("roc_curves", "reliability_curves", "auc_by_history")

logger = logging.getLogger(__name__)


def _model_name(language_model_info: dict[str, Any], finetune_params: dict[str, Any]) -> str:
    return finetune_params.get("model") or language_model_info["name_or_path"]


def _predictions(sample_ids: np.ndarray, probs: np.ndarray) -> pa.Table:
    return pa.table(
        {
            "sample_id": pa.array(sample_ids, pa.int64()),
            "probability": pa.array(probs, pa.float64()),
        }
    )


def _test_rows(few2many_samples: DuckDBTable, arm: str) -> tuple[Subset, np.ndarray]:
    rows = few2many_samples.arrow()
    test = subset(rows, "test", arm)
    ids = rows.filter(pa.compute.equal(rows.column("subset"), "test")).sort_by("sample_id")
    return test, ids.column("sample_id").to_numpy()


def score_zero_shot(
    few2many_samples: DuckDBTable,
    language_model_info: dict[str, Any],
    params: dict[str, Any],
    finetune_params: dict[str, Any],
) -> pa.Table:
    """P(Yes) of the base LLM, without any adapter, on the test subset."""
    # vanilla_lora reads the same retrieved-history prompts, without any user input.
    test, ids = _test_rows(few2many_samples, "vanilla_lora")
    model, tokenizer = load_causal_lm(_model_name(language_model_info, finetune_params))
    probs = score_prompts(
        model, tokenizer, test.prompts, batch_size=int(params["batch_size"]),
        bf16=bool(params["bf16"]), progress=True, max_length=int(finetune_params["max_length"]),
    )  # fmt: skip
    return _predictions(ids, probs)


def score_arm(
    few2many_samples: DuckDBTable,
    adapter: Path,
    finetune_report: dict[str, Any],
    language_model_info: dict[str, Any],
    params: dict[str, Any],
    finetune_params: dict[str, Any],
    arm: str,
) -> pa.Table:
    """P(Yes) of a fine-tuned arm from its persisted adapter; no rows if it was not trained."""
    if not finetune_report.get("trained", False):
        logger.info("%s was not trained (finetune.ablations): nothing to score", arm)
        return _predictions(np.zeros(0, np.int64), np.zeros(0))
    test, ids = _test_rows(few2many_samples, arm)
    base, tokenizer = load_causal_lm(_model_name(language_model_info, finetune_params))
    arm_model = load_arm(adapter, base)
    probs = score(
        arm_model, tokenizer, test, int(params["batch_size"]), bool(params["bf16"]),
        int(finetune_params["max_length"]), progress=True,
    )  # fmt: skip
    return _predictions(ids, probs)


def summarize_gates(
    few2many_samples: DuckDBTable,
    adapter: Path,
    language_model_info: dict[str, Any],
    finetune_params: dict[str, Any],
) -> dict[str, Any]:
    """RecLoRA's mean gate weight per adapted layer and expert over the test users."""
    test, _ = _test_rows(few2many_samples, "reclora")
    base, _ = load_causal_lm(_model_name(language_model_info, finetune_params))
    weights, layers = mean_gate_weights(load_arm(adapter, base), test.user_repr)
    return {"layers": layers, "weights": weights.round(6).tolist(), "n_users": len(test)}


def _labelled_test(few2many_samples: DuckDBTable) -> pa.Table:
    rows = few2many_samples.connection.sql(
        f"SELECT sample_id, label, history_length FROM {few2many_samples.sql_name} "
        "WHERE subset = 'test' ORDER BY sample_id"
    ).to_arrow_table()
    if rows.num_rows == 0:
        raise UserInputError("few2many_samples has no test rows: rerun the few2many pipeline")
    if rows.column("label").null_count:
        raise UserInputError(
            f"the test subset has {rows.column('label').null_count} rows without a label "
            "(column 'label' of few2many_samples): AUC needs every test label"
        )
    return rows


def _aligned(name: str, test_ids: np.ndarray, table: pa.Table, column: str) -> np.ndarray:
    """``column`` of ``table`` in the order of ``test_ids``; every test row must be present."""
    ids = table.column("sample_id").to_numpy()
    values = table.column(column).to_numpy()
    position = {int(sample): i for i, sample in enumerate(ids)}
    missing = [int(s) for s in test_ids if int(s) not in position]
    if missing:
        raise UserInputError(
            f"{name} has no score for {len(missing)} test samples (e.g. sample_id {missing[0]}): "
            "it was scored on another test subset; rerun its scoring node"
        )
    return values[[position[int(s)] for s in test_ids]].astype(np.float64)


def compare_models(
    few2many_samples: DuckDBTable,
    crm_predictions: DuckDBTable,
    params: dict[str, Any],
    **predictions: DuckDBTable,
) -> tuple[dict[str, Any], str, Figure, Figure, Figure]:
    """metrics.json, metrics.md and the comparison plots, all on the same test rows."""
    test = _labelled_test(few2many_samples)
    test_ids = test.column("sample_id").to_numpy()
    labels = test.column("label").to_numpy().astype(np.int64)
    probs: dict[str, np.ndarray] = {}
    for key, table in predictions.items():
        name = key.removeprefix("predictions_")
        scored = table.arrow()
        if scored.num_rows:  # an ablation that was not trained has no rows
            probs[name] = _aligned(name, test_ids, scored, "probability")
    crm_table = crm_predictions.arrow()
    for name in params["crms"]:
        if name not in crm_table.column_names:
            raise UserInputError(f"evaluation.crms has {name!r}, which crm_predictions lacks")
        probs[name] = _aligned(name, test_ids, crm_table, name)
    settings = {"n_boot": int(params["n_bootstrap"]), "level": float(params["ci_level"]),
                "seed": int(params["seed"])}  # fmt: skip
    models = {name: model_metrics(labels, p, model=name, **settings) for name, p in probs.items()}
    comparisons = {}
    for first, second in (("reclora", "vanilla_lora"), ("reclora", "zero_shot"),
                          ("vanilla_lora", "zero_shot"), ("reclora", params["crms"][0])):  # fmt: skip
        if first in probs and second in probs:
            comparisons[f"{first} - {second}"] = paired_bootstrap_auc_difference(
                labels, probs[first], probs[second], model_a=first, model_b=second, **settings
            )
    uri, run_id = _mlflow_run()
    document = metrics_document(models, uri, run_id, comparisons)
    for name, entry in document["models"].items():
        logger.info("%-22s AUC %.4f [%.4f, %.4f]  LogLoss %.4f", name, entry["auc"],
                    entry["auc_ci_low"], entry["auc_ci_high"], entry["logloss"])  # fmt: skip
    history = test.column("history_length").to_numpy()
    bucket_models = {
        n: probs[n] for n in ("reclora", "vanilla_lora", params["crms"][0]) if n in probs
    }
    return (
        document,
        metrics_markdown(document, crm_names=params["crms"], level=settings["level"]),
        plots.roc_figure(labels, probs),
        plots.reliability_figure(labels, probs),
        plots.auc_by_history_bucket_figure(
            labels, history, bucket_models, edges=tuple(params["history_buckets"])
        ),
    )


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
