"""The LLMs on the test rows: P(Yes) of the base model and of each fine-tuned arm, and
RecLoRA's mean gate weights."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch

from reclora_pipeline.compute import (
    Precision,
    choose_precision,
    choose_threads,
    compute_facts,
    use_precision,
    use_threads,
)
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.evaluation.gates import mean_gate_weights
from reclora_pipeline.evaluation.rows import predictions_table, rows_to_score
from reclora_pipeline.evaluation.settings import EvaluationSettings
from reclora_pipeline.finetune.adapters import load_arm
from reclora_pipeline.finetune.run import score
from reclora_pipeline.finetune.scoring import score_prompts
from reclora_pipeline.item_text.language_model import load_causal_lm

# The keys of a finetune report that say what an arm was trained on.
REPORT_KEYS = ("model", "max_length")


@dataclass(frozen=True)
class BaseModel:
    """The base LLM an arm was fine-tuned on, and the prompt length it was trained with."""

    name: str
    max_length: int

    @classmethod
    def of(cls, report: Mapping[str, Any], arm: str) -> BaseModel:
        """Read from ``finetune_report_<arm>`` (the report of a trained arm)."""
        missing = [key for key in REPORT_KEYS if key not in report]
        if missing:
            raise UserInputError(
                f"finetune_report_{arm} has no {' or '.join(missing)} (an older report, or an "
                "arm that was not trained): rerun the finetune pipeline"
            )
        return cls(str(report["model"]), int(report["max_length"]))


def scoring_device() -> str:
    """Where the LLMs score: the GPU when there is one."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def use_compute(settings: EvaluationSettings) -> Precision:
    """Apply ``evaluation.torch_threads`` and resolve ``evaluation.bf16``, both logged."""
    use_threads(settings.torch_threads, "evaluation.torch_threads")
    return use_precision(settings.bf16, scoring_device(), "evaluation.bf16")


def compute_report(settings: EvaluationSettings) -> dict:
    """How the LLMs were scored (precision, threads, CPU), for metrics.json."""
    precision = choose_precision(settings.bf16, scoring_device(), "evaluation.bf16")
    return compute_facts(
        precision, choose_threads(settings.torch_threads, "evaluation.torch_threads")
    )


def score_base_model(
    few2many_samples: DuckDBTable, base: BaseModel, settings: EvaluationSettings
) -> pa.Table:
    """P(Yes) of the base LLM, without any adapter, per test sample."""
    precision = use_compute(settings)
    # vanilla_lora reads the same retrieved-history prompts, without any user input.
    rows, sample_ids = rows_to_score(few2many_samples, "vanilla_lora")
    model, tokenizer = load_causal_lm(base.name, device=scoring_device())
    probs = score_prompts(
        model, tokenizer, rows.prompts, batch_size=settings.batch_size,
        bf16=precision.bf16, progress=True, max_length=base.max_length,
    )  # fmt: skip
    return predictions_table(sample_ids, probs)


def score_adapter(
    few2many_samples: DuckDBTable,
    adapter: Path,
    arm: str,
    base: BaseModel,
    settings: EvaluationSettings,
) -> pa.Table:
    """P(Yes) of ``arm`` loaded from its persisted adapter, per test sample."""
    precision = use_compute(settings)
    rows, sample_ids = rows_to_score(few2many_samples, arm)
    model, tokenizer = load_causal_lm(base.name, device=scoring_device())
    probs = score(
        # The adapters load on the CPU: moved to the base model's device.
        load_arm(adapter, model).to(scoring_device()), tokenizer, rows, settings.batch_size,
        precision.bf16, base.max_length, progress=True,
    )  # fmt: skip
    return predictions_table(sample_ids, probs)


def gate_summary(few2many_samples: DuckDBTable, adapter: Path, base: BaseModel) -> dict[str, Any]:
    """RecLoRA's mean gate weight per adapted layer and expert over the test users."""
    rows, _ = rows_to_score(few2many_samples, "reclora")
    model, _ = load_causal_lm(base.name)
    weights, layers = mean_gate_weights(load_arm(adapter, model), rows.user_repr)
    return {"layers": layers, "weights": weights.round(6).tolist(), "n_users": len(rows)}
