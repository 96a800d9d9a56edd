"""One arm's fine-tune from Few2Many rows to a saved adapter folder (no Kedro).

``run_request`` runs inside the Kedro process (``finetune.launch.launcher: inline``) and
in every process the ``deepspeed`` launcher starts (``finetune.launch.launcher: deepspeed``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from reclora_pipeline.compute import process_facts, use_precision
from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.finetune.adapters import save_arm
from reclora_pipeline.finetune.arms import ArmModel, build_arm, check_arm
from reclora_pipeline.finetune.batching import length_bucketed_batches, padding_share
from reclora_pipeline.finetune.engine import make_engine
from reclora_pipeline.finetune.request import FinetuneRequest
from reclora_pipeline.finetune.scoring import answer_loss, score_prompts
from reclora_pipeline.finetune.settings import PREFIX
from reclora_pipeline.finetune.tokenization import collate_training, encode_examples
from reclora_pipeline.finetune.trainer import train
from reclora_pipeline.item_text.language_model import load_causal_lm

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subset:
    """The rows of one Few2Many subset as an arm reads them."""

    prompts: list[str]
    answers: list[str]
    labels: np.ndarray
    user_repr: torch.Tensor  # [n, user_dim] float32, the frozen CRM's
    user_ids: torch.Tensor  # [n] int64, dense ids from ingest (reclora_no_lens)

    def __len__(self) -> int:
        return len(self.prompts)


def prompt_column(arm: str) -> str:
    """The few2many_samples column ``arm`` reads: recency prompts (tallrec, the no-retriever
    ablation) or retrieved-history prompts (every other arm)."""
    return check_arm(arm).prompt_column


def subset(rows: pa.Table, name: str, arm: str) -> Subset:
    """The ``name`` subset (train / valid / test) of ``few2many_samples`` rows, for ``arm``."""
    mask = pa.compute.equal(rows.column("subset"), name)
    part = rows.filter(mask).sort_by("sample_id")
    if part.num_rows == 0:
        raise UserInputError(f"few2many_samples has no {name!r} rows: rerun the few2many pipeline")
    vectors = part.column("user_repr").combine_chunks()
    dim = len(vectors[0])
    user_repr = np.asarray(vectors.flatten().to_numpy(), dtype=np.float32).reshape(-1, dim)
    return Subset(
        prompts=part.column(prompt_column(arm)).to_pylist(),
        answers=part.column("answer").to_pylist(),
        labels=part.column("label").to_numpy().astype(np.int64),
        user_repr=torch.from_numpy(user_repr),
        user_ids=torch.from_numpy(part.column("user_id").to_numpy().astype(np.int64)),
    )


def user_dim(rows: pa.Table) -> int:
    """Width of the CRM's user representation in ``few2many_samples`` rows (the gate's input)."""
    if rows.num_rows == 0:
        raise UserInputError("few2many_samples has no rows: rerun the few2many pipeline")
    return len(rows.column("user_repr")[0])


def run_request(
    request: FinetuneRequest,
    rows: pa.Table,
    output_folder: Path,
    *,
    world_size: int = 1,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train ``request.arm`` on the train rows of ``few2many_samples``, early-stopped on the
    valid rows; the best adapter goes to ``output_folder``. Returns the training report."""
    train_rows, valid_rows = subset(rows, "train", request.arm), subset(rows, "valid", request.arm)
    return train_arm(request, train_rows, valid_rows, output_folder, world_size=world_size,
                     progress=progress, on_epoch_end=on_epoch_end)  # fmt: skip


def train_arm(
    request: FinetuneRequest,
    train_rows: Subset,
    valid_rows: Subset,
    output_folder: Path,
    *,
    world_size: int = 1,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
    stop_after_steps: int | None = None,
) -> dict[str, Any]:
    """Fine-tune ``request.arm`` on ``train_rows``, keep the best valid-AUC adapter in
    ``output_folder``. Returns a report: engine, precision, per-epoch history, best epoch and
    valid AUC.
    """
    arm = request.arm
    # bf16 "auto" becomes a fixed choice here, in the process (and on the device) that trains.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = use_precision(request.training.bf16, device, f"{PREFIX}.bf16")
    settings = dataclasses.replace(request.training, bf16=precision.bf16)
    max_length, eval_batch_size = settings.max_length, settings.eval_batch_size
    base, tokenizer = load_causal_lm(request.model)
    arm_model = build_arm(arm, base, request.lora, n_users=request.n_users)
    examples = encode_examples(tokenizer, train_rows.prompts, train_rows.answers, max_length)
    if examples.n_truncated:
        logger.warning(
            "%d of %d training prompts were cut on the left to fit finetune.training.max_length=%d",
            examples.n_truncated,
            len(examples),
            max_length,
        )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    micro = settings.micro_batch_size

    def batch_rows(epoch: int, window: int) -> list[np.ndarray]:
        # A function of (seed, epoch) only, so a resumed run replays the same batches.
        rng = np.random.default_rng([settings.seed, epoch])
        return length_bucketed_batches(examples.lengths, micro, rng, window)

    def train_batches(epoch: int) -> list[dict[str, Any]]:
        return [_micro_batch(examples, rows, pad_id, train_rows)
                for rows in batch_rows(epoch, settings.length_window)]  # fmt: skip

    padding = {
        "shuffled": padding_share(examples.lengths, batch_rows(0, 1)),
        "length_sorted": padding_share(examples.lengths, batch_rows(0, settings.length_window)),
    }
    logger.info("%s: padding is %.1f%% of the training tokens (%.1f%% with plain shuffled "
                "batches)", arm, 100 * padding["length_sorted"], 100 * padding["shuffled"])  # fmt: skip

    def compute_loss(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        device = next(arm_model.parameters()).device
        inputs = {key: value.to(device) for key, value in batch["inputs"].items()}
        return answer_loss(
            _as_arm(model),
            inputs,
            user_repr=batch["user_repr"].to(device),
            user_ids=batch["user_ids"].to(device),
        )

    def evaluate(model: torch.nn.Module) -> float:
        probs = score(_as_arm(model), tokenizer, valid_rows, eval_batch_size, settings.bf16,
                      max_length, progress=progress and int(os.environ.get("RANK", "0")) == 0)  # fmt: skip
        return auc(valid_rows.labels, probs)

    steps = settings.optimizer_steps(math.ceil(len(examples) / micro))
    outcome = train(
        lambda: make_engine(arm_model, settings, steps, world_size),
        train_batches,
        compute_loss,
        evaluate,
        settings,
        Path(request.checkpoint_dir) if request.checkpoint_dir else None,
        progress=progress,
        on_epoch_end=on_epoch_end,
        stop_after_steps=stop_after_steps,
    )
    report = {
        "arm": arm,
        "engine": outcome.engine_name,
        "history": outcome.history,
        "best_epoch": outcome.best_epoch,
        "best_valid_auc": outcome.best_valid_auc,
        "optimizer_steps": outcome.steps,
        "interrupted": outcome.interrupted,
        "n_train": len(train_rows),
        "n_valid": len(valid_rows),
        "n_truncated": examples.n_truncated,
        "padding_share": {key: round(value, 4) for key, value in padding.items()},
        "trainable_parameters": sum(p.numel() for p in arm_model.parameters() if p.requires_grad),
        "compute": process_facts(precision),
    }
    if outcome.best_state:
        missing = set(outcome.best_state) - set(dict(arm_model.named_parameters()))
        if missing:
            raise RuntimeError(f"best state has unknown parameters: {sorted(missing)[:5]}")
        arm_model.load_state_dict(outcome.best_state, strict=False)
        # Every process holds the gathered best state; one writes it.
        if int(os.environ.get("RANK", "0")) == 0:
            save_arm(arm_model, output_folder)
    return report


def score(
    arm_model: ArmModel,
    tokenizer: Any,
    rows: Subset,
    batch_size: int,
    bf16: bool,
    max_length: int | None,
    progress: bool = False,
) -> np.ndarray:
    """P(Yes) for every row, with the user input the arm reads."""
    return score_prompts(
        arm_model,
        tokenizer,
        rows.prompts,
        user_repr=rows.user_repr,
        user_ids=rows.user_ids,
        batch_size=batch_size,
        bf16=bf16,
        progress=progress,
        max_length=max_length,
    )


def _micro_batch(examples: Any, indices: np.ndarray, pad_id: int, rows: Subset) -> dict[str, Any]:
    index = torch.from_numpy(indices)
    return {
        "inputs": collate_training(examples, indices, pad_id),
        "user_repr": rows.user_repr[index],
        "user_ids": rows.user_ids[index],
    }


def _as_arm(model: torch.nn.Module) -> ArmModel:
    """The ArmModel behind ``model`` (a DeepSpeed engine keeps it as ``.module``)."""
    inner = getattr(model, "module", model)
    if not isinstance(inner, ArmModel):
        raise TypeError(f"expected an ArmModel, got {type(inner).__name__}")
    return inner
