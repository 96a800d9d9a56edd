"""Does data-parallel training do what one process does? A check through the real launcher.

The same request runs twice through :func:`~reclora_pipeline.finetune.launch.run_launcher`
(the ``deepspeed`` launcher, as on GPUs; on a CPU machine its processes talk over gloo):
once as one process with ``world_size`` times the accumulation steps, once as
``world_size`` processes, so both take the same global batch. The check compares what
each process trained on, the per-epoch losses, the final adapter weights and the valid
scores.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from safetensors.torch import load_file

from reclora_pipeline.finetune import launch
from reclora_pipeline.finetune.request import FinetuneRequest


def with_world_size(
    request: FinetuneRequest, world_size: int, accumulation: int
) -> FinetuneRequest:
    """``request`` for ``world_size`` processes of ``accumulation`` steps (batch derived)."""
    training = dataclasses.replace(
        request.training, gradient_accumulation_steps=accumulation, batch_size=None
    )
    return dataclasses.replace(request, training=training)


def launched_run(
    request: FinetuneRequest, rows: pa.Table, run_dir: Path, world_size: int
) -> dict[str, Any]:
    """Train ``request`` with ``world_size`` launched processes; what the check reads back."""
    launch.write_request(run_dir, request, rows)
    report = launch.run_launcher(run_dir, world_size, None)
    record = run_dir / launch.RECORD_FOLDER
    shards = [
        json.loads((record / f"shard_rank{rank}.json").read_text()) for rank in range(world_size)
    ]
    return {
        "report": report,
        "shards": shards,
        "weights": adapter_weights(run_dir / launch.ADAPTER_FOLDER),
        "valid_scores": np.load(record / "valid_scores.npy"),
    }


def adapter_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the saved adapter folder, keyed by file and name."""
    weights = {}
    for path in sorted(folder.rglob("*.safetensors")):
        weights.update({f"{path.relative_to(folder)}:{k}": v for k, v in load_file(path).items()})
    if not weights:
        raise FileNotFoundError(f"no safetensors adapter files in {folder}")
    return weights


def shards_disjoint(shards: list[dict[str, list[int]]]) -> bool:
    """Whether no training row went to two ranks (or twice to one) in any epoch."""
    for epoch in shards[0]:
        seen = [i for shard in shards for i in shard[epoch]]
        if len(seen) != len(set(seen)):
            return False
    return True


def compare_world_sizes(
    request: FinetuneRequest, rows: pa.Table, work_dir: Path, world_size: int = 2
) -> dict[str, Any]:
    """Run the one-process reference and the ``world_size``-process run; the comparison."""
    accumulation = request.training.gradient_accumulation_steps
    single = launched_run(
        with_world_size(request, 1, accumulation * world_size), rows, work_dir / "single", 1
    )
    parallel = launched_run(
        with_world_size(request, world_size, accumulation), rows, work_dir / "parallel", world_size
    )
    train = rows.filter(pa.compute.equal(rows.column("subset"), "train"))
    train_ids = sorted(train.column("sample_id").to_pylist())
    covered = all(
        sorted(i for shard in run["shards"] for i in shard[epoch]) == train_ids
        for run in (single, parallel)
        for epoch in run["shards"][0]
    )
    return {
        "world_size": world_size,
        "shards_disjoint": shards_disjoint(parallel["shards"]),
        "shards_cover": covered,
        "max_loss_diff": max_difference(
            [h["train_loss"] for h in single["report"]["history"]],
            [h["train_loss"] for h in parallel["report"]["history"]],
        ),
        "max_weight_diff": max(
            float((single["weights"][k] - parallel["weights"][k]).abs().max())
            for k in single["weights"]
        ),
        "max_score_diff": float(np.abs(single["valid_scores"] - parallel["valid_scores"]).max()),
        "optimizer_steps": [
            single["report"]["optimizer_steps"],
            parallel["report"]["optimizer_steps"],
        ],  # fmt: skip
        "engine": parallel["report"]["engine"],
    }


def max_difference(first: list[float], second: list[float]) -> float:
    """The largest absolute difference of two equally long lists (inf if they differ in
    length: the runs did not take the same epochs)."""
    if len(first) != len(second):
        return float("inf")
    return max((abs(a - b) for a, b in zip(first, second, strict=True)), default=0.0)
