"""The base model's valid AUC, scored once per run and shared by every arm.

Every arm's adapters start as the identity (LoRA B = 0), so before training each arm is
the base model: its valid AUC is the bar the fine-tune has to clear. Arms that read the
same prompt column share one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import torch

from reclora_pipeline.compute import process_facts, use_precision
from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.finetune.run import prompt_column, subset
from reclora_pipeline.finetune.scoring import score_prompts
from reclora_pipeline.finetune.settings import PREFIX, FinetuneSettings
from reclora_pipeline.item_text.language_model import load_causal_lm


def zero_shot_valid(
    rows: pa.Table, model_name: str, arms: Sequence[str], settings: FinetuneSettings
) -> dict[str, Any]:
    """Valid AUC of ``model_name`` without adapters, per prompt column ``arms`` read."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = use_precision(settings.bf16, device, f"{PREFIX}.bf16")
    model, tokenizer = load_causal_lm(model_name, device=device)
    valid_auc, n_valid = {}, 0
    for column in sorted({prompt_column(arm) for arm in arms}):
        arm = next(arm for arm in arms if prompt_column(arm) == column)
        valid = subset(rows, "valid", arm)
        probs = score_prompts(
            model, tokenizer, valid.prompts, batch_size=settings.eval_batch_size,
            bf16=precision.bf16, progress=True, max_length=settings.max_length,
        )  # fmt: skip
        valid_auc[column], n_valid = auc(valid.labels, probs), len(valid)
    compute = process_facts(precision)
    return {"model": model_name, "n_valid": n_valid, "valid_auc": valid_auc, "compute": compute}


def zero_shot_auc(report: dict[str, Any], arm: str) -> float | None:
    """The zero-shot valid AUC on the prompts ``arm`` reads (None if it was not scored)."""
    return report.get("valid_auc", {}).get(prompt_column(arm))
