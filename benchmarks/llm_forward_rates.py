"""The LLM's raw forward rate on real prompts: fp32 (and bf16 where the CPU has it natively),
1 and 2 threads, interleaved.

The raw rate is what the model itself can do on these prompts: batches of length-sorted
prompts, one forward each under ``torch.no_grad`` with only the last position projected
(``logits_to_keep=1``), nothing else timed. ``score_prompts`` (the pipeline's scoring)
is timed on the same prompts, with each configuration, for the achieved/raw ratio.
Configurations are interleaved over ``--rounds`` rounds so a neighbour's load hits all of
them alike; the best round of each is kept. Last stdout line: one JSON object.

    .venv/bin/python benchmarks/llm_forward_rates.py --workspace . --n-prompts 64
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import nullcontext
from pathlib import Path

import duckdb
import numpy as np
import torch

from reclora_pipeline.compute import cpu_info
from reclora_pipeline.finetune.batching import length_sorted_batches
from reclora_pipeline.finetune.scoring import score_prompts
from reclora_pipeline.finetune.tokenization import collate_prompts, encode_prompts, truncate_left
from reclora_pipeline.item_text.language_model import load_causal_lm

DATABASE = Path("data/03_primary/reclora.duckdb")
CONVERTED = Path("data/06_models/smollm2-135m-instruct")
LANGUAGE_MODEL_RECORD = Path("data/06_models/language_model.json")


def workspace_model(workspace: Path) -> Path:
    """The model the workspace's prompts were written for (item_text's record), else the
    converted embedded SmolLM2."""
    record = workspace / LANGUAGE_MODEL_RECORD
    if not record.is_file():
        return workspace / CONVERTED
    path = Path(json.loads(record.read_text())["name_or_path"])
    return path if path.is_absolute() else workspace / path


def real_prompts(workspace: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` test-split prompts: few2many's test rows (the only rendered prompts)."""
    connection = duckdb.connect(str(workspace / DATABASE), read_only=True)
    try:
        tables = {row[0] for row in connection.execute("SHOW TABLES").fetchall()}
        if "few2many_samples" not in tables:
            raise SystemExit(f"{workspace} has no few2many_samples: run the pipeline to few2many")
        query = "SELECT prompt FROM few2many_samples WHERE subset = 'test' ORDER BY sample_id"
        prompts = [row[0] for row in connection.execute(query).fetchall()]
    finally:
        connection.close()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(prompts), size=min(n, len(prompts)), replace=False)
    return [prompts[i] for i in sorted(chosen)]


@torch.no_grad()
def raw_forward_seconds(model, token_lists, pad_id: int, batch_size: int, bf16: bool) -> float:
    """Seconds for the bare forwards of every length-sorted batch."""
    lengths = np.array([len(ids) for ids in token_lists])
    batches = [
        collate_prompts([token_lists[i] for i in rows], pad_id)
        for rows in length_sorted_batches(lengths, batch_size)
    ]
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    started = time.perf_counter()
    with autocast:
        for batch in batches:
            model(**batch, logits_to_keep=1, use_cache=False)
    return time.perf_counter() - started


def native_precisions() -> tuple[bool, ...]:
    """fp32, plus bf16 where the CPU multiplies it natively: emulated bf16 runs several
    times slower than fp32 and would only make the benchmark long."""
    info = cpu_info()
    return (False, True) if info.amx or info.avx512_bf16 else (False,)


def measure(
    model_folder: Path, prompts: list[str], batch_size: int, threads: list[int], rounds: int,
    max_length: int = 512, precisions: tuple[bool, ...] | None = None,
) -> dict:  # fmt: skip
    """Prompts/s of the raw forward and of ``score_prompts`` per (precision, threads);
    ``precisions`` (bf16 flags) defaults to :func:`native_precisions`."""
    precisions = native_precisions() if precisions is None else precisions
    model, tokenizer = load_causal_lm(str(model_folder))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    token_lists = [truncate_left(ids, max_length) for ids in encode_prompts(tokenizer, prompts)]
    configs = [(bf16, n) for bf16 in precisions for n in threads]
    best: dict[str, float] = {}
    # A warm-up pass per precision: first calls pay oneDNN's kernel selection.
    for bf16 in precisions:
        raw_forward_seconds(model, token_lists[:batch_size], pad_id, batch_size, bf16)
    for _ in range(rounds):
        for bf16, n in configs:
            torch.set_num_threads(n)
            name = f"{'bf16' if bf16 else 'fp32'}_{n}t"
            raw = raw_forward_seconds(model, token_lists, pad_id, batch_size, bf16)
            started = time.perf_counter()
            score_prompts(model, tokenizer, token_lists, batch_size=batch_size, bf16=bf16)
            scored = time.perf_counter() - started
            for kind, seconds in (("raw", raw), ("score_prompts", scored)):
                key = f"{kind}_{name}"
                best[key] = max(best.get(key, 0.0), len(prompts) / seconds)
    return {key: round(value, 3) for key, value in sorted(best.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("."))
    parser.add_argument("--n-prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    prompts = real_prompts(args.workspace, args.n_prompts)
    load_before = os.getloadavg()
    model_folder = workspace_model(args.workspace)
    rates = measure(model_folder, prompts, args.batch_size, args.threads, args.rounds)
    for key, value in rates.items():
        print(f"{key:28s} {value:7.2f} prompts/s")
    result = {
        "prompts_per_s": rates,
        "model": str(model_folder),
        "n_prompts": len(prompts),
        "batch_size": args.batch_size,
        **cpu_info().to_dict(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
