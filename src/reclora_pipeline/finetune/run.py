"""One arm's fine-tune from Few2Many rows to a saved adapter folder (no Kedro).

``run_request`` runs inside the Kedro process (``finetune.launch.launcher: inline``) and
in every process the ``deepspeed`` launcher starts (``finetune.launch.launcher: deepspeed``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from reclora_pipeline.compute import model_dtype, process_facts, use_precision
from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.finetune.adapters import save_arm
from reclora_pipeline.finetune.arms import ArmModel, build_arm, check_arm
from reclora_pipeline.finetune.batching import length_bucketed_batches, padding_share
from reclora_pipeline.finetune.data_parallel import (
    even_batches,
    gather_scores,
    micro_batch_seed,
    rank_and_world_size,
)
from reclora_pipeline.finetune.engine import make_engine
from reclora_pipeline.finetune.request import FinetuneRequest
from reclora_pipeline.finetune.scoring import answer_loss, score_prompts
from reclora_pipeline.finetune.settings import PREFIX
from reclora_pipeline.finetune.tokenization import (
    collate_training,
    encode_examples,
    encode_prompts,
)
from reclora_pipeline.finetune.trainer import seed_everything, train
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
    sample_ids: np.ndarray  # [n] int64, the rows' sample_id

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, indices: np.ndarray) -> Subset:
        """The rows at ``indices``, in that order."""
        rows = np.asarray(indices, dtype=np.int64)
        index = torch.from_numpy(rows)
        return Subset(
            prompts=[self.prompts[i] for i in rows],
            answers=[self.answers[i] for i in rows],
            labels=self.labels[rows],
            user_repr=self.user_repr[index],
            user_ids=self.user_ids[index],
            sample_ids=self.sample_ids[rows],
        )


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
    user_repr = user_repr_matrix(part.column("user_repr"))
    return Subset(
        prompts=part.column(prompt_column(arm)).to_pylist(),
        answers=part.column("answer").to_pylist(),
        labels=part.column("label").to_numpy().astype(np.int64),
        user_repr=torch.from_numpy(user_repr),
        user_ids=torch.from_numpy(part.column("user_id").to_numpy().astype(np.int64)),
        sample_ids=part.column("sample_id").to_numpy().astype(np.int64),
    )


def user_repr_matrix(column: pa.ChunkedArray) -> np.ndarray:
    """A list column of equally long vectors as a writable float32 [rows, dim] matrix (a
    copy: Arrow's buffers are read-only, and torch wants writable memory)."""
    vectors = column.combine_chunks()
    dim = len(vectors[0])  # a fixed-size or a plain list column
    return np.array(vectors.flatten().to_numpy(), dtype=np.float32).reshape(-1, dim)


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
    record_dir: Path | None = None,
) -> dict[str, Any]:
    """Train ``request.arm`` on the train rows of ``few2many_samples``, early-stopped on the
    valid rows; the best adapter goes to ``output_folder``. Returns the training report."""
    train_rows, valid_rows = subset(rows, "train", request.arm), subset(rows, "valid", request.arm)
    return train_arm(request, train_rows, valid_rows, output_folder, world_size=world_size,
                     progress=progress, on_epoch_end=on_epoch_end, record_dir=record_dir)  # fmt: skip


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
    record_dir: Path | None = None,
) -> dict[str, Any]:
    """Fine-tune ``request.arm`` on ``train_rows``, keep the best valid-AUC adapter in
    ``output_folder``. Returns a report: engine, precision, per-epoch history, best epoch and
    valid AUC.

    With ``record_dir``, each process writes there the sample ids it trained on per epoch
    (``shard_rank<r>.json``) and the first process the valid scores of the best epoch
    (``valid_scores.npy``, in ``sample_id`` order): what the data-parallel check compares.
    """
    arm = request.arm
    rank = rank_and_world_size()[0]
    # bf16 "auto" becomes a fixed choice here, in the process (and on the device) that trains.
    device = training_device()
    precision = use_precision(request.training.bf16, device, f"{PREFIX}.bf16")
    # fp16 weights compute in fp16 (DeepSpeed's fp16 mode), never under a bf16 autocast.
    bf16 = precision.bf16 and request.training.model_dtype != "fp16"
    settings = dataclasses.replace(request.training, bf16=bf16)
    max_length, eval_batch_size = settings.max_length, settings.eval_batch_size
    dtype = model_dtype(settings.model_dtype, bf16, device, f"{PREFIX}.model_dtype")
    int8 = settings.model_dtype == "int8"
    base, tokenizer = load_causal_lm(request.model, dtype=dtype, device=device, int8=int8)
    # The adapters' random start is a function of the seed (not of what ran before in this
    # process), so every process and every world size starts from the same weights.
    seed_everything(settings.seed)
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
        # This process's share of the epoch's global micro-batches; each keeps its global
        # index, which seeds its dropout (the same masks for any number of processes).
        batches = even_batches(batch_rows(epoch, settings.length_window), world_size)
        mine = range(rank, len(batches), world_size)
        shards[epoch] = [int(i) for b in mine for i in train_rows.sample_ids[batches[b]]]
        return [
            _micro_batch(examples, batches[index], pad_id, train_rows,
                         micro_batch_seed(settings.seed, epoch, index))
            for index in mine
        ]  # fmt: skip

    padding = {
        "shuffled": padding_share(examples.lengths, batch_rows(0, 1)),
        "length_sorted": padding_share(examples.lengths, batch_rows(0, settings.length_window)),
    }
    logger.info("%s: padding is %.1f%% of the training tokens (%.1f%% with plain shuffled "
                "batches)", arm, 100 * padding["length_sorted"], 100 * padding["shuffled"])  # fmt: skip

    def compute_loss(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        device = next(arm_model.parameters()).device
        inputs = {key: value.to(device) for key, value in batch["inputs"].items()}
        torch.manual_seed(batch["seed"])  # dropout masks of this micro-batch (all devices)
        _as_arm(model)  # an ArmModel, or a DeepSpeed engine around one
        # Through the DeepSpeed engine itself, not its .module: the engine's forward opens
        # each micro-step, and without it ZeRO-3 overwrites the gradients of the earlier
        # micro-batches of an accumulation group instead of adding to them.
        return answer_loss(
            model,
            inputs,
            user_repr=batch["user_repr"].to(device),
            user_ids=batch["user_ids"].to(device),
        )

    shards: dict[int, list[int]] = {}
    valid_scores: list[np.ndarray] = []  # one array per evaluation, in epoch order
    valid_tokens = encode_prompts(tokenizer, valid_rows.prompts)
    valid_lengths = np.array([min(len(ids), max_length) for ids in valid_tokens])

    def evaluate(model: torch.nn.Module) -> float:
        # Each process scores its share of the valid rows; all get every score back.
        def score_share(indices: np.ndarray) -> np.ndarray:
            return score(_as_arm(model), tokenizer, valid_rows.take(indices), eval_batch_size,
                         settings.bf16, max_length, progress=progress and rank == 0,
                         token_lists=[valid_tokens[i] for i in indices])  # fmt: skip

        valid_scores.append(gather_scores(score_share, valid_lengths))
        return auc(valid_rows.labels, valid_scores[-1])

    # Every process takes the same number of micro-batches per epoch (even_batches).
    per_process = len(even_batches(batch_rows(0, settings.length_window), world_size))
    steps = settings.optimizer_steps(per_process // world_size)
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
        # The base model's weights as trained on (the evaluation loads them the same way).
        "weights": "int8" if int8 else "float",
        "compute": process_facts(precision),
    }
    if record_dir is not None:
        _record(record_dir, rank, shards, valid_scores, outcome)
    if outcome.best_state:
        missing = set(outcome.best_state) - set(dict(arm_model.named_parameters()))
        if missing:
            raise RuntimeError(f"best state has unknown parameters: {sorted(missing)[:5]}")
        trained = [p for n, p in arm_model.named_parameters() if n in outcome.best_state]
        with _gathered(trained):
            arm_model.load_state_dict(outcome.best_state, strict=False)
            # Every process holds the gathered best state; one writes it.
            if rank == 0:
                save_arm(arm_model, output_folder)
    return report


def _gathered(params: list[torch.nn.Parameter]) -> contextlib.AbstractContextManager:
    """Full tensors of ZeRO-3 partitioned ``params`` inside the block (every process must
    enter it); a no-op for parameters DeepSpeed did not partition."""
    if not any(hasattr(param, "ds_id") for param in params):
        return contextlib.nullcontext()
    import deepspeed  # only reached after a ZeRO-3 run

    return deepspeed.zero.GatheredParameters(params, modifier_rank=0)


def score(
    arm_model: ArmModel,
    tokenizer: Any,
    rows: Subset,
    batch_size: int,
    bf16: bool,
    max_length: int | None,
    progress: bool = False,
    token_lists: list[list[int]] | None = None,
) -> np.ndarray:
    """P(Yes) for every row, with the user input the arm reads (``token_lists``: the
    prompts already encoded)."""
    return score_prompts(
        arm_model,
        tokenizer,
        rows.prompts if token_lists is None else token_lists,
        user_repr=rows.user_repr,
        user_ids=rows.user_ids,
        batch_size=batch_size,
        bf16=bf16,
        progress=progress,
        max_length=max_length,
    )


def _record(
    folder: Path, rank: int, shards: dict[int, list[int]], scores: list[np.ndarray], outcome: Any
) -> None:
    """This process's training sample ids per epoch; rank 0: the best epoch's valid scores
    (evaluations map to the last ``len(scores)`` epochs: a resumed run misses the first)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"shard_rank{rank}.json").write_text(
        json.dumps({str(e): ids for e, ids in shards.items()})
    )
    position = outcome.best_epoch - (len(outcome.history) - len(scores))
    if rank == 0 and 0 <= position < len(scores):
        np.save(folder / "valid_scores.npy", scores[position])


def training_device() -> str:
    """Where this process trains: its own GPU (``LOCAL_RANK``) when there is one."""
    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"


def _micro_batch(
    examples: Any, indices: np.ndarray, pad_id: int, rows: Subset, seed: int
) -> dict[str, Any]:
    index = torch.from_numpy(indices)
    return {
        "inputs": collate_training(examples, indices, pad_id),
        "user_repr": rows.user_repr[index],
        "user_ids": rows.user_ids[index],
        "seed": seed,
    }


def _as_arm(model: torch.nn.Module) -> ArmModel:
    """The ArmModel behind ``model`` (a DeepSpeed engine keeps it as ``.module``)."""
    inner = getattr(model, "module", model)
    if not isinstance(inner, ArmModel):
        raise TypeError(f"expected an ArmModel, got {type(inner).__name__}")
    return inner
