"""Thin finetune nodes: parameters in, the finetune library trains, an adapter folder out."""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import mlflow
import torch

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.finetune import launch
from reclora_pipeline.finetune.arms import ARMS
from reclora_pipeline.finetune.run import lora_config, subset, train_arm
from reclora_pipeline.finetune.settings import FinetuneSettings

# Arms trained on every run; the others only when listed in finetune.ablations.
MAIN_ARMS = ("reclora", "vanilla_lora")
LAUNCHERS = ("inline", "deepspeed")
# finetune.* keys that are not training settings (FinetuneSettings takes the rest).
PIPELINE_KEYS = (
    "model", "ablations", "launcher", "num_gpus", "hostfile", "max_length",
    "eval_batch_size", "checkpoint_folder", "torch_threads", "lora",
)  # fmt: skip
NOT_TRAINED_FILE = "NOT_TRAINED"

logger = logging.getLogger(__name__)


def training_settings(params: dict[str, Any]) -> FinetuneSettings:
    """``FinetuneSettings`` from finetune.*; an unknown key is reported with the accepted ones."""
    settings_keys = {f.name for f in fields(FinetuneSettings)}
    unknown = sorted(set(params) - settings_keys - set(PIPELINE_KEYS))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join('finetune.' + k for k in unknown)}; accepted: "
            f"{', '.join(sorted(settings_keys | set(PIPELINE_KEYS)))}"
        )
    return FinetuneSettings.from_params({k: v for k, v in params.items() if k in settings_keys})


def ablations(params: dict[str, Any]) -> list[str]:
    """finetune.ablations as a list: a YAML list, or names joined by '+' (the kedro CLI
    splits --params at commas, so `--params finetune.ablations=a+b` is the one-flag form),
    or "all"."""
    value = params.get("ablations") or []
    if isinstance(value, str):
        value = list(ARMS[2:]) if value.strip() == "all" else value.replace("+", " ").split()
    return [str(arm) for arm in value]


def check_finetune_parameters(params: dict[str, Any]) -> FinetuneSettings:
    """Every finetune setting checked before a model is loaded."""
    settings = training_settings(params)
    unknown = [arm for arm in ablations(params) if arm not in ARMS[2:]]
    if unknown:
        raise ParameterError(
            f"finetune.ablations has {unknown}; accepted: {list(ARMS[2:])} (reclora and "
            f"vanilla_lora are always trained)"
        )
    if params["launcher"] not in LAUNCHERS:
        raise ParameterError(
            f"finetune.launcher={params['launcher']!r}; accepted values: {list(LAUNCHERS)}"
        )
    if not isinstance(params["max_length"], int) or params["max_length"] < 8:
        raise ParameterError(
            f"finetune.max_length must be an integer >= 8, got {params['max_length']!r}"
        )
    return settings


def finetune_arm(
    few2many_samples: DuckDBTable,
    users: DuckDBTable,
    language_model_info: dict[str, Any],
    params: dict[str, Any],
    arm: str,
) -> tuple[Path, dict[str, Any]]:
    """Train ``arm`` on the Few2Many train rows; its adapter folder and training report."""
    settings = check_finetune_parameters(params)
    output = Path(tempfile.mkdtemp(prefix=f"reclora_{arm}_"))
    atexit.register(shutil.rmtree, output, True)  # the catalog has copied it by then
    if arm not in MAIN_ARMS and arm not in ablations(params):
        # The node still runs (the pipeline's shape is fixed): it leaves a marker.
        (output / NOT_TRAINED_FILE).write_text(f"{arm} is not in finetune.ablations\n")
        return output, {"arm": arm, "trained": False}
    if params.get("torch_threads"):
        torch.set_num_threads(int(params["torch_threads"]))
    model = params.get("model") or language_model_info["name_or_path"]
    rows = few2many_samples.arrow()
    checkpoint_dir = (
        Path(params["checkpoint_folder"]) / arm if params.get("checkpoint_folder") else None
    )
    n_users = users.count()
    if params["launcher"] == "deepspeed":
        request = {
            "arm": arm, "model": model, "n_users": n_users,
            "settings": {k: v for k, v in params.items() if k not in PIPELINE_KEYS},
            "lora": dict(params["lora"]), "max_length": params["max_length"],
            "eval_batch_size": params["eval_batch_size"],
            "checkpoint_dir": None if checkpoint_dir is None else str(checkpoint_dir.resolve()),
        }  # fmt: skip
        launch.write_request(output / "run", request, rows)
        report = launch.run_launcher(output / "run", params["num_gpus"], params.get("hostfile"))
        adapter = output / "run" / launch.ADAPTER_FOLDER
    else:
        train_rows, valid_rows = subset(rows, "train", arm), subset(rows, "valid", arm)
        adapter = output / "adapter"
        report = train_arm(
            arm,
            model,
            train_rows,
            valid_rows,
            settings,
            lora_config(params["lora"], user_dim=train_rows.user_repr.shape[1]),
            adapter,
            n_users=n_users,
            max_length=params["max_length"],
            eval_batch_size=params["eval_batch_size"],
            checkpoint_dir=checkpoint_dir,
            on_epoch_end=_log_epoch(arm),
        )
    if not adapter.is_dir():
        raise RuntimeError(f"{arm}: training finished without an adapter (no epoch completed)")
    logger.info("%s trained with %s: best valid AUC %.4f at epoch %d", arm, report["engine"],
                report["best_valid_auc"], report["best_epoch"] + 1)  # fmt: skip
    return adapter, {**report, "trained": True, "model": model}


def _log_epoch(arm: str):
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
