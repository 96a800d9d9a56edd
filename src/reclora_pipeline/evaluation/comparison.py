"""Every model on the same test rows: metrics with bootstrap intervals, paired AUC
comparisons, the metrics document, its markdown table and the comparison figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.evaluation import plots
from reclora_pipeline.evaluation.metrics import model_metrics, paired_bootstrap_auc_difference
from reclora_pipeline.evaluation.report import metrics_document, metrics_markdown
from reclora_pipeline.evaluation.settings import EvaluationSettings
from reclora_pipeline.finetune.arms import ARMS

# The LLMs scored on the test rows: the base model without adapter, then every arm.
LLM_MODELS = ("zero_shot", *ARMS)
# Baselines without a language model, scored on the same rows (listed with the CRMs).
BASELINES = ("lens_readout",)
# Every prediction table the comparison reads, in this order.
PREDICTED_MODELS = (*LLM_MODELS, *BASELINES)
# The figures of a comparison, in the order of Comparison.figures.
FIGURES = ("roc_curves", "reliability_curves", "auc_by_history")
# Paired comparisons (first - second) in metrics.json; None stands for the first CRM.
PAIRS = (
    ("reclora", "vanilla_lora"), ("reclora", "zero_shot"),
    ("vanilla_lora", "zero_shot"), ("reclora", None), ("reclora", "lens_readout"),
    ("reclora", "tallrec"), ("vanilla_lora", "tallrec"), ("reclora", "reclora_no_few2many"),
)  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """What the comparison writes: metrics.json's document, metrics.md and the figures."""

    document: dict[str, Any]
    markdown: str
    figures: tuple[Figure, Figure, Figure]  # in FIGURES order


def aligned(name: str, test_ids: np.ndarray, table: pa.Table, column: str) -> np.ndarray:
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


def model_probabilities(
    test_ids: np.ndarray,
    llm_predictions: Mapping[str, pa.Table],
    crm_predictions: pa.Table,
    crms: Sequence[str],
) -> dict[str, np.ndarray]:
    """Each model's P(Yes) in ``test_ids`` order: the predicted models (LLMs, baselines),
    then the CRMs in ``crms``.

    A table without rows is an ablation that was not trained: it is left out.
    """
    lacking = [name for name in crms if name not in crm_predictions.column_names]
    if lacking:
        raise UserInputError(f"evaluation.crms has {lacking[0]!r}, which crm_predictions lacks")
    probs = {name: aligned(name, test_ids, table, "probability")
             for name, table in llm_predictions.items() if table.num_rows}  # fmt: skip
    probs.update({name: aligned(name, test_ids, crm_predictions, name) for name in crms})
    return probs


def compare(
    test: pa.Table,
    probs: Mapping[str, np.ndarray],
    settings: EvaluationSettings,
    mlflow_run: tuple[str | None, str | None] = (None, None),
) -> Comparison:
    """Metrics, paired comparisons and figures of ``probs`` on the labelled ``test`` rows
    (``sample_id``, ``user_id``, ``label``, ``history_length``, in the order of ``probs``).

    ``mlflow_run`` is the tracking URI and run id the document points to.
    """
    labels = test.column("label").to_numpy().astype(np.int64)
    users = test.column("user_id").to_numpy() if settings.bootstrap_unit == "user" else None
    bootstrap = {
        "n_boot": settings.n_bootstrap,
        "level": settings.ci_level,
        "seed": settings.seed,
        "users": users,
    }
    models = {name: model_metrics(labels, p, model=name, **bootstrap) for name, p in probs.items()}
    bar = settings.crms[0]
    comparisons = {
        f"{first} - {second}": paired_bootstrap_auc_difference(
            labels, probs[first], probs[second], model_a=first, model_b=second, **bootstrap
        )
        for first, second in ((a, b or bar) for a, b in PAIRS)
        if first in probs and second in probs
    }
    document = metrics_document(models, *mlflow_run, comparisons, settings.bootstrap_unit)
    by_history = {name: probs[name] for name in ("reclora", "vanilla_lora", bar) if name in probs}
    history = test.column("history_length").to_numpy()
    return Comparison(
        document,
        metrics_markdown(document, crm_names=(*settings.crms, *BASELINES), level=settings.ci_level),
        (
            plots.roc_figure(labels, probs),
            plots.reliability_figure(labels, probs),
            plots.auc_by_history_bucket_figure(
                labels, history, by_history, edges=settings.history_buckets
            ),
        ),
    )
