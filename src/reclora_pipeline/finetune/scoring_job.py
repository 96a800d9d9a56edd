"""P(Yes) of a base model or of a trained arm for many prompts: in this process, or split
over the processes of the ``deepspeed`` launcher.

Launched, each process loads one copy of the model on its own device, scores every
``w``-th prompt in length order (:func:`~.data_parallel.gather_scores`) and rank 0 writes
all the scores, in the rows' order, for the caller to read back. The evaluation, the
finetune stage's zero-shot pass and the predict pipeline score through here, so
``launcher: deepspeed`` spreads all of them as it spreads training.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from reclora_pipeline.compute import (
    Bf16Setting,
    check_int8_available,
    use_precision,
    use_threads,
)
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.finetune import launch
from reclora_pipeline.finetune.adapters import ArmMismatchError, load_arm, read_arm_file
from reclora_pipeline.finetune.data_parallel import gather_scores, rank_and_world_size
from reclora_pipeline.finetune.deepspeed_setup import init_deepspeed_distributed
from reclora_pipeline.finetune.run import training_device, user_repr_matrix
from reclora_pipeline.finetune.scoring import score_prompts
from reclora_pipeline.finetune.settings import LaunchSettings
from reclora_pipeline.finetune.tokenization import encode_prompts, truncate_left
from reclora_pipeline.item_text.language_model import load_causal_lm

logger = logging.getLogger(__name__)

JOB_FILE = "scoring_job.json"
ROWS_FILE = "scoring_rows.parquet"
SCORES_FILE = "scores.npy"


class AdapterBaseModelError(UserInputError):
    """The arm's adapter was saved for another base model than the one it is scored on."""


@dataclass(frozen=True)
class ScoringJob:
    """What scores the prompts, and how (the settings' names are kept for messages)."""

    model: str  # the base model: a hub id or a local folder
    max_length: int | None  # prompts are cut on the left to this many tokens
    batch_size: int
    bf16: Bf16Setting  # resolved in each scoring process, on its own device
    bf16_key: str
    torch_threads: int | None = None  # in this process; launched CPU processes share cores
    threads_key: str = "torch_threads"
    adapter: str | None = None  # a saved arm's folder; None = the base model alone
    arm: str | None = None  # the arm ``adapter`` must hold
    int8: bool = False  # the base's linear layers in 8 bit, as the arm was trained

    def __post_init__(self) -> None:
        if (self.adapter is None) != (self.arm is None):
            raise ValueError("a ScoringJob names both an adapter and its arm, or neither")


@dataclass(frozen=True)
class ScoringRows:
    """The prompts and, for an arm, the user input each row's gate reads."""

    prompts: list[str]
    user_repr: torch.Tensor | None = None  # [n, user_dim] float32
    user_ids: torch.Tensor | None = None  # [n] int64

    def to_table(self) -> pa.Table:
        columns: dict[str, Any] = {"prompt": self.prompts}
        if self.user_repr is not None:
            columns["user_repr"] = self.user_repr.numpy().tolist()
        if self.user_ids is not None:
            columns["user_id"] = self.user_ids.numpy()
        return pa.table(columns)

    def take(self, indices: np.ndarray) -> ScoringRows:
        """The rows at ``indices``, in that order."""
        index = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        return ScoringRows(
            [self.prompts[i] for i in index.tolist()],
            None if self.user_repr is None else self.user_repr[index],
            None if self.user_ids is None else self.user_ids[index],
        )

    @classmethod
    def from_table(cls, table: pa.Table) -> ScoringRows:
        """``prompt`` and, when present, ``user_repr`` and ``user_id``; other columns are
        ignored."""
        names = set(table.column_names)
        user_repr = user_ids = None
        if "user_repr" in names:
            user_repr = torch.from_numpy(user_repr_matrix(table.column("user_repr")))
        if "user_id" in names:
            user_ids = torch.from_numpy(table.column("user_id").to_numpy().astype(np.int64))
        return cls(table.column("prompt").to_pylist(), user_repr, user_ids)


def scoring_device() -> str:
    """Where this process scores when no launcher placed it: the GPU when there is one."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_adapter(job: ScoringJob) -> None:
    """Refuse an adapter folder that holds another arm (before any model is loaded)."""
    if job.adapter is None:
        return
    saved_arm = read_arm_file(Path(job.adapter))["arm"]
    if saved_arm != job.arm:
        raise UserInputError(
            f"adapter folder {job.adapter} holds arm {saved_arm!r}, not {job.arm!r}"
        )


def load_scorer(job: ScoringJob, device: str) -> tuple[torch.nn.Module, Any]:
    """The base model (with the job's arm on it, if any) on ``device``, and its tokenizer."""
    check_adapter(job)
    if job.int8:
        check_int8_available("finetune.training.model_dtype")
    # Straight onto the scoring device: one copy of the weights, none left on the host.
    model, tokenizer = load_causal_lm(job.model, device=device, int8=job.int8)
    if job.adapter is None:
        return model, tokenizer
    try:
        arm_model = load_arm(Path(job.adapter), model)
    except ArmMismatchError as error:
        raise AdapterBaseModelError(
            f"adapter_{job.arm} ({job.adapter}) was not trained on {job.model}, the base "
            f"model finetune_report_{job.arm} names: {error}. Rerun the finetune pipeline"
        ) from None
    # The adapters load on the CPU: moved to the base model's device.
    return arm_model.to(device), tokenizer


def score_loaded(
    model: torch.nn.Module,
    tokenizer: Any,
    job: ScoringJob,
    rows: ScoringRows,
    bf16: bool,
    progress: bool,
    token_lists: list[list[int]] | None = None,
) -> np.ndarray:
    """P(Yes) of every row with a loaded model (``token_lists``: the prompts encoded)."""
    # The base model alone reads no user input, whatever the rows carry.
    with_arm = job.adapter is not None
    return score_prompts(
        model, tokenizer, rows.prompts if token_lists is None else token_lists,
        user_repr=rows.user_repr if with_arm else None,
        user_ids=rows.user_ids if with_arm else None, batch_size=job.batch_size,
        bf16=bf16, progress=progress, max_length=job.max_length,
    )  # fmt: skip


def score_here(job: ScoringJob, rows: ScoringRows, device: str) -> np.ndarray:
    """P(Yes) of every row, scored in this process on ``device``."""
    use_threads(job.torch_threads, job.threads_key)
    precision = use_precision(job.bf16, device, job.bf16_key)
    model, tokenizer = load_scorer(job, device)
    started = time.perf_counter()
    scores = score_loaded(model, tokenizer, job, rows, precision.bf16, progress=True)
    _log_rate(len(scores), time.perf_counter() - started)
    return scores


def score_job(job: ScoringJob, rows: ScoringRows, launch_settings: LaunchSettings) -> np.ndarray:
    """P(Yes) of every row, in row order: in this process (``launcher: inline``) or split
    over the processes of the ``deepspeed`` launcher."""
    if launch_settings.launcher == "inline" or len(rows.prompts) == 0:
        return score_here(job, rows, scoring_device())
    check_adapter(job)  # a wrong folder fails here, not in every launched process
    with tempfile.TemporaryDirectory(prefix="reclora_scoring_") as folder:
        run_dir = Path(folder)
        (run_dir / JOB_FILE).write_text(json.dumps(dataclasses.asdict(job), indent=2))
        pq.write_table(rows.to_table(), run_dir / ROWS_FILE)
        launch.start_launcher(
            run_dir, launch_settings.num_gpus, launch_settings.hostfile, module=__name__
        )
        scores = np.load(run_dir / SCORES_FILE)
    if len(scores) != len(rows.prompts):
        raise RuntimeError(f"the launched scoring returned {len(scores)} scores for "
                           f"{len(rows.prompts)} rows")  # fmt: skip
    return scores


def run_launched_process(run_dir: Path) -> np.ndarray:
    """Score this process's share of the rows on its own device; rank 0 writes them all."""
    job = ScoringJob(**json.loads((run_dir / JOB_FILE).read_text()))
    rows = ScoringRows.from_table(pq.read_table(run_dir / ROWS_FILE))
    init_deepspeed_distributed(int(os.environ.get("WORLD_SIZE", "1")))
    rank = rank_and_world_size()[0]
    launch.share_cores()
    device = training_device()
    precision = use_precision(job.bf16, device, job.bf16_key)
    model, tokenizer = load_scorer(job, device)
    token_lists = encode_prompts(tokenizer, rows.prompts)
    if job.max_length is not None:
        token_lists = [truncate_left(ids, job.max_length) for ids in token_lists]

    def score_share(indices: np.ndarray) -> np.ndarray:
        return score_loaded(model, tokenizer, job, rows.take(indices), precision.bf16,
                            rank == 0, [token_lists[i] for i in indices])  # fmt: skip

    started = time.perf_counter()
    scores = gather_scores(score_share, np.array([len(ids) for ids in token_lists]))
    if rank == 0:
        _log_rate(len(scores), time.perf_counter() - started)
        np.save(run_dir / SCORES_FILE, scores)
    return scores


def _log_rate(n_prompts: int, seconds: float) -> None:
    logger.info("scored %d prompts in %.1f s (%.1f prompts/s)",
                n_prompts, seconds, n_prompts / max(seconds, 1e-9))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    launch.launched_main(run_launched_process, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
