"""Data-parallel training equals one process: the real model and rows, the real launcher.

Takes ``--n-train`` train and ``--n-valid`` valid rows of ``few2many_samples`` from a
workspace where the default job ran (benchmarks/full_run_profile.py --keep leaves one)
and trains RecLoRA on the embedded SmolLM2 twice through the ``deepspeed`` launcher: one
process with ``--world-size`` times the accumulation steps, then ``--world-size``
processes (gloo on a CPU machine, NCCL on GPUs), each with the same global batch.

    python benchmarks/data_parallel_check.py --workspace W [--world-size 2]

Then the one-process adapter scores ``--n-score`` test rows in this process and over
``--world-size`` launched processes (the evaluation's and predict's ``launch`` path).

The check runs on one core by default (``--all-cores`` lifts that), so every process of
both runs computes with one thread: a matmul's rounding depends on how many threads
split it, and AdamW turns last-bit gradient differences into weight differences of up
to about ``lr``. One process with 2 threads against 2 processes with 1 each differed by
2.4e-4 in the weights; with one thread each, by 4e-6 (docs/benchmarks.md).

The last stdout line is JSON with ``world_size``, ``shards_disjoint``, ``shards_cover``,
``max_loss_diff``, ``max_weight_diff`` (final adapter weights), ``max_score_diff``
(valid P(Yes) of the best epoch) and ``max_launched_score_diff`` (test P(Yes), launched
scoring against in-process scoring).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from reclora_pipeline.compute import available_cores
from reclora_pipeline.finetune import launch
from reclora_pipeline.finetune.parallel_check import compare_world_sizes
from reclora_pipeline.finetune.request import FinetuneRequest, build_request
from reclora_pipeline.finetune.run import subset, user_dim
from reclora_pipeline.finetune.scoring_job import ScoringJob, ScoringRows, score_job
from reclora_pipeline.finetune.settings import FinetuneStageSettings, LaunchSettings
from reclora_pipeline.typed_settings import parse

DATABASE = Path("data/03_primary/reclora.duckdb")
MODEL = Path("data/06_models/smollm2-135m-instruct")


def read_rows(workspace: Path, counts: dict[str, int]) -> pa.Table:
    """The first ``counts[name]`` rows of each subset (by sample_id), read-only."""
    with duckdb.connect(str(workspace / DATABASE), read_only=True) as connection:
        query = "SELECT * FROM few2many_samples WHERE subset = ? ORDER BY sample_id LIMIT ?"
        parts = [connection.execute(query, [name, n]).to_arrow_table()
                 for name, n in counts.items()]  # fmt: skip
    return pa.concat_tables(parts)


def launched_score_diff(
    request: FinetuneRequest, adapter: Path, rows: pa.Table, world_size: int
) -> float:
    """The largest |P(Yes)| difference of the test rows scored by ``adapter`` in this
    process and over ``world_size`` launched processes."""
    test = subset(rows, "test", request.arm)
    job = ScoringJob(model=request.model, max_length=request.training.max_length,
                     batch_size=request.training.eval_batch_size, bf16=False,
                     bf16_key="bf16", adapter=str(adapter), arm=request.arm)  # fmt: skip
    scoring_rows = ScoringRows(test.prompts, test.user_repr, test.user_ids)
    inline = score_job(job, scoring_rows, LaunchSettings())
    spread = score_job(job, scoring_rows, LaunchSettings("deepspeed", num_gpus=world_size))
    return float(abs(inline - spread).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=32)
    parser.add_argument("--n-valid", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n-score", type=int, default=64, help="test rows scored both ways")
    parser.add_argument(
        "--all-cores",
        action="store_true",
        help="use every core (processes then differ in threads, see above)",
    )
    args = parser.parse_args()
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        # Inherited by the launched processes: each takes cores // processes = 1 thread.
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    counts = {"train": args.n_train, "valid": args.n_valid, "test": args.n_score}
    rows = read_rows(args.workspace, counts)
    # The shipped training settings, shortened; micro-batches of 2 so 32 rows make 16
    # micro-batches (8 per process at world size 2) and several optimizer steps.
    training = {"epochs": args.epochs, "micro_batch_size": 2, "gradient_accumulation_steps": 2,
                "engine": "deepspeed", "patience": args.epochs, "max_length": 512}  # fmt: skip
    settings = parse(FinetuneStageSettings, {"training": training}, "finetune")
    request = build_request("reclora", settings, str(args.workspace / MODEL),
                            n_users=int(rows.column("user_id").to_numpy().max()) + 1,
                            user_dim=user_dim(rows))  # fmt: skip
    request = dataclasses.replace(request, checkpoint_dir=None)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reclora_dp_check_") as folder:
        train_rows = rows.filter(pa.compute.not_equal(rows.column("subset"), "test"))
        result = compare_world_sizes(request, train_rows, Path(folder), world_size=args.world_size)
        adapter = Path(folder) / "single" / launch.ADAPTER_FOLDER
        result["max_launched_score_diff"] = launched_score_diff(
            request, adapter, rows, args.world_size
        )
    result.update(n_train=args.n_train, n_valid=args.n_valid, n_score=args.n_score,
                  epochs=args.epochs, cores=available_cores(),
                  seconds=round(time.perf_counter() - started, 1))  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
