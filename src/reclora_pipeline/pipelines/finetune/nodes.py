"""Thin finetune nodes: parsed settings in, the finetune library trains, an adapter out."""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pyarrow as pa
import torch

from reclora_pipeline.compute import use_threads
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.finetune import launch
from reclora_pipeline.finetune.arms import ARMS
from reclora_pipeline.finetune.lens_rows import through_few_shot_lens
from reclora_pipeline.finetune.request import build_request
from reclora_pipeline.finetune.run import user_dim
from reclora_pipeline.finetune.settings import FinetuneStageSettings
from reclora_pipeline.finetune.zero_shot import zero_shot_auc, zero_shot_valid

NOT_TRAINED_FILE = "NOT_TRAINED"
# The arm whose gates read the lens retrained on the Few2Many train rows.
FEW_SHOT_LENS_ARM = "reclora_no_few2many"

logger = logging.getLogger(__name__)


def score_zero_shot_valid(
    few2many_samples: DuckDBTable,
    language_model_info: dict[str, Any],
    settings: FinetuneStageSettings,
) -> dict[str, Any]:
    """The base model's valid AUC, once per run for all arms: every arm starts from it."""
    use_threads(settings.torch_threads, "finetune.torch_threads")
    arms = [arm for arm in ARMS if settings.trains(arm)]
    model = settings.model or language_model_info["name_or_path"]
    report = zero_shot_valid(few2many_samples.arrow(), model, arms, settings.training,
                             settings.launch, settings.torch_threads)  # fmt: skip
    logger.info("zero-shot valid AUC: %s", report["valid_auc"])
    return report


def see_through_few_shot_lens(
    few2many_samples: DuckDBTable,
    ctr_features: dict[str, torch.Tensor],
    ctr_vocabulary: dict[str, Any],
    lens_recipe: dict[str, Any],
    settings: FinetuneStageSettings,
) -> tuple[pa.Table, dict[str, Any]]:
    """``few2many_samples_few_shot_lens``: the Few2Many rows with ``user_repr`` and
    ``crm_probability`` from the lens CRM retrained on the train rows alone (the gate input
    of reclora_no_few2many), and that CRM's report; no rows when the arm is not trained."""
    rows = few2many_samples.arrow()
    if not settings.trains(FEW_SHOT_LENS_ARM):
        return rows.slice(0, 0), {"trained": False}
    use_threads(settings.torch_threads, "finetune.torch_threads")
    seen, report = through_few_shot_lens(
        rows, ctr_features, ctr_vocabulary, lens_recipe, settings.few_shot_lens
    )
    logger.info("few-row lens (%s): AUC by subset %s", report["crm"], report["auc"])
    return seen, {"trained": True, **report}


def finetune_arm(
    few2many_samples: DuckDBTable,
    users: DuckDBTable,
    language_model_info: dict[str, Any],
    zero_shot: dict[str, Any],
    settings: FinetuneStageSettings,
    arm: str,
) -> tuple[Path, dict[str, Any]]:
    """Train ``arm`` on the Few2Many train rows; its adapter folder and training report."""
    output = Path(tempfile.mkdtemp(prefix=f"reclora_{arm}_"))
    atexit.register(shutil.rmtree, output, True)  # the catalog has copied it by then
    if not settings.trains(arm):
        # The node still runs (the pipeline's shape is fixed): it leaves a marker.
        (output / NOT_TRAINED_FILE).write_text(f"{arm} is not in finetune.ablations\n")
        return output, {"arm": arm, "trained": False}
    use_threads(settings.torch_threads, "finetune.torch_threads")
    rows = few2many_samples.arrow()
    request = build_request(
        arm, settings, language_model_info["name_or_path"], users.count(), user_dim(rows)
    )
    adapter, report = launch.finetune(
        request, rows, settings.launch, output, on_epoch_end=_log_epoch(arm)
    )
    if not adapter.is_dir():
        raise RuntimeError(f"{arm}: training finished without an adapter (no epoch completed)")
    logger.info("%s trained with %s: best valid AUC %.4f at epoch %d", arm, report["engine"],
                report["best_valid_auc"], report["best_epoch"] + 1)  # fmt: skip
    # The evaluation scores with the same base model and prompt length: it reads them here.
    facts = {"model": request.model, "max_length": request.training.max_length}
    start = {"zero_shot_valid_auc": zero_shot_auc(zero_shot, arm)}
    return adapter, {**report, **start, "trained": True, **facts}


def _log_epoch(arm: str) -> Callable[[dict[str, float]], None]:
    """Per-epoch loss and valid AUC to MLflow when a run is active (kedro-mlflow)."""

    def log(record: dict[str, float]) -> None:
        if mlflow.active_run() is None:
            return
        step = int(record["epoch"])
        mlflow.log_metrics(
            {
                f"{arm}.train_loss": float(record["train_loss"]),
                f"{arm}.valid_auc": float(record["valid_auc"]),
                f"{arm}.samples_per_s": float(record["samples_per_s"]),
            },
            step=step,
        )

    return log
