"""Data-parallel training equals one process: the real model and rows, the real launcher.

Takes ``--n-train`` train and ``--n-valid`` valid rows of ``few2many_samples`` from a
workspace where the default job ran (benchmarks/full_run_profile.py --keep leaves one)
and trains RecLoRA on the embedded SmolLM2 twice through the ``deepspeed`` launcher: one
process with ``--world-size`` times the accumulation steps, then ``--world-size``
processes (gloo on a CPU machine, NCCL on GPUs), each with the same global batch.

    python benchmarks/data_parallel_check.py --workspace W [--world-size 2]

The last stdout line is JSON with ``world_size``, ``shards_disjoint``, ``shards_cover``,
``max_loss_diff``, ``max_weight_diff`` (final adapter weights) and ``max_score_diff``
(valid P(Yes) of the best epoch).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from reclora_pipeline.finetune.parallel_check import compare_world_sizes
from reclora_pipeline.finetune.request import build_request
from reclora_pipeline.finetune.run import user_dim
from reclora_pipeline.finetune.settings import FinetuneStageSettings
from reclora_pipeline.typed_settings import parse

DATABASE = Path("data/03_primary/reclora.duckdb")
MODEL = Path("data/06_models/smollm2-135m-instruct")


def read_rows(workspace: Path, n_train: int, n_valid: int) -> pa.Table:
    """The first ``n_train`` train and ``n_valid`` valid rows (by sample_id), read-only."""
    with duckdb.connect(str(workspace / DATABASE), read_only=True) as connection:
        query = "SELECT * FROM few2many_samples WHERE subset = ? ORDER BY sample_id LIMIT ?"
        parts = [connection.execute(query, [name, n]).to_arrow_table()
                 for name, n in (("train", n_train), ("valid", n_valid))]  # fmt: skip
    return pa.concat_tables(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=32)
    parser.add_argument("--n-valid", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    rows = read_rows(args.workspace, args.n_train, args.n_valid)
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
        result = compare_world_sizes(request, rows, Path(folder), world_size=args.world_size)
    result.update(n_train=args.n_train, n_valid=args.n_valid, epochs=args.epochs,
                  seconds=round(time.perf_counter() - started, 1))  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
