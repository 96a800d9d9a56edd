"""The LLMs on the test rows: P(Yes) of the base model and of each fine-tuned arm, and
RecLoRA's mean gate weights."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from reclora_pipeline.compute import choose_precision, choose_threads, compute_facts
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.evaluation.gates import mean_gate_weights
from reclora_pipeline.evaluation.rows import predictions_table, rows_to_score
from reclora_pipeline.evaluation.settings import EvaluationSettings
from reclora_pipeline.finetune.adapters import load_arm
from reclora_pipeline.finetune.scoring_job import (
    ScoringJob,
    ScoringRows,
    score_job,
    scoring_device,
)
from reclora_pipeline.item_text.language_model import load_causal_lm

# The keys of a finetune report that say what an arm was trained on.
REPORT_KEYS = ("model", "max_length")


@dataclass(frozen=True)
class BaseModel:
    """The base LLM an arm was fine-tuned on, and the prompt length it was trained with."""

    name: str
    max_length: int
    # Whether the arm trained on 8-bit linear weights (finetune.training.model_dtype: int8).
    int8: bool = False

    @classmethod
    def of(cls, report: Mapping[str, Any], arm: str) -> BaseModel:
        """Read from ``finetune_report_<arm>`` (the report of a trained arm)."""
        missing = [key for key in REPORT_KEYS if key not in report]
        if missing:
            raise UserInputError(
                f"finetune_report_{arm} has no {' or '.join(missing)} (an older report, or an "
                "arm that was not trained): rerun the finetune pipeline"
            )
        return cls(str(report["model"]), int(report["max_length"]), report.get("weights") == "int8")


def compute_report(settings: EvaluationSettings) -> dict:
    """How the LLMs were scored (precision, threads, CPU), for metrics.json."""
    precision = choose_precision(settings.bf16, scoring_device(), "evaluation.bf16")
    return compute_facts(
        precision, choose_threads(settings.torch_threads, "evaluation.torch_threads")
    )


def scoring_job(base: BaseModel, settings: EvaluationSettings, arm: str | None = None,
                adapter: Path | None = None) -> ScoringJob:  # fmt: skip
    """How the evaluation scores the base model (no ``arm``) or ``arm``'s adapter."""
    return ScoringJob(
        model=base.name, max_length=base.max_length, batch_size=settings.batch_size,
        bf16=settings.bf16, bf16_key="evaluation.bf16", torch_threads=settings.torch_threads,
        threads_key="evaluation.torch_threads", arm=arm, int8=base.int8,
        adapter=None if adapter is None else str(adapter),
    )  # fmt: skip


def score_base_model(
    few2many_samples: DuckDBTable, base: BaseModel, settings: EvaluationSettings
) -> pa.Table:
    """P(Yes) of the base LLM, without any adapter, per test sample."""
    # vanilla_lora reads the same retrieved-history prompts, without any user input.
    rows, sample_ids = rows_to_score(few2many_samples, "vanilla_lora")
    probs = score_job(scoring_job(base, settings), ScoringRows(rows.prompts), settings.launch)
    return predictions_table(sample_ids, probs)


def score_adapter(
    few2many_samples: DuckDBTable,
    adapter: Path,
    arm: str,
    base: BaseModel,
    settings: EvaluationSettings,
) -> pa.Table:
    """P(Yes) of ``arm`` loaded from its persisted adapter, per test sample."""
    rows, sample_ids = rows_to_score(few2many_samples, arm)
    probs = score_job(
        scoring_job(base, settings, arm, adapter),
        ScoringRows(rows.prompts, rows.user_repr, rows.user_ids),
        settings.launch,
    )
    return predictions_table(sample_ids, probs)


def gate_summary(few2many_samples: DuckDBTable, adapter: Path, base: BaseModel) -> dict[str, Any]:
    """RecLoRA's mean gate weight per adapted layer and expert over the test users."""
    rows, _ = rows_to_score(few2many_samples, "reclora")
    model, _ = load_causal_lm(base.name)
    weights, layers = mean_gate_weights(load_arm(adapter, model), rows.user_repr)
    return {"layers": layers, "weights": weights.round(6).tolist(), "n_users": len(rows)}
