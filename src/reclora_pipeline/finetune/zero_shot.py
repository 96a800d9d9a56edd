"""The base model's valid AUC, scored once per run and shared by every arm.

Every arm's adapters start as the identity (LoRA B = 0), so before training each arm is
the base model: its valid AUC is the bar the fine-tune has to clear. Arms that read the
same prompt column share one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from reclora_pipeline.compute import choose_precision, process_facts
from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.finetune.run import prompt_column, subset
from reclora_pipeline.finetune.scoring_job import ScoringJob, ScoringRows, score_job, scoring_device
from reclora_pipeline.finetune.settings import PREFIX, FinetuneSettings, LaunchSettings


def zero_shot_valid(
    rows: pa.Table,
    model_name: str,
    arms: Sequence[str],
    settings: FinetuneSettings,
    launch: LaunchSettings | None = None,
    torch_threads: int | None = None,
) -> dict[str, Any]:
    """Valid AUC of ``model_name`` without adapters, per prompt column ``arms`` read,
    scored in this process or over the launcher's processes (``launch``)."""
    launch = launch or LaunchSettings()
    job = ScoringJob(
        model=model_name, max_length=settings.max_length, batch_size=settings.eval_batch_size,
        bf16=settings.bf16, bf16_key=f"{PREFIX}.bf16", torch_threads=torch_threads,
        threads_key="finetune.torch_threads", int8=settings.model_dtype == "int8",
    )  # fmt: skip
    valid_auc, n_valid = {}, 0
    for column in sorted({prompt_column(arm) for arm in arms}):
        arm = next(arm for arm in arms if prompt_column(arm) == column)
        valid = subset(rows, "valid", arm)
        probs = score_job(job, ScoringRows(valid.prompts), launch)
        valid_auc[column], n_valid = auc(valid.labels, probs), len(valid)
    precision = choose_precision(settings.bf16, scoring_device(), f"{PREFIX}.bf16")
    compute = process_facts(precision)
    return {"model": model_name, "n_valid": n_valid, "valid_auc": valid_auc, "compute": compute}


def zero_shot_auc(report: dict[str, Any], arm: str) -> float | None:
    """The zero-shot valid AUC on the prompts ``arm`` reads (None if it was not scored)."""
    return report.get("valid_auc", {}).get(prompt_column(arm))
