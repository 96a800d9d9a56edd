"""The embedded LLMs side by side on the same valid rows: prompt length, scoring rate and
zero-shot AUC.

Each model gets the user turns of the workspace's Few2Many valid rows, wrapped the way
item_text wraps them for that model (``item_text.prompt_template: auto``: the chat
template where the tokenizer has one, else ``plain`` with its BOS), and scores them with
``score_prompts`` in fp32 (batch 16, length-sorted). The user turns are those of the
workspace's own prompts, so the retrieved history is the same for every model. Models
run one after the other; run on a quiet machine. Last stdout line: JSON.

    .venv/bin/python benchmarks/compare_embedded_llms.py --workspace W \\
        --models embedded embedded-gemma3-270m
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb
import numpy as np
import torch

from reclora_pipeline.compute import cpu_info
from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.finetune.scoring import score_prompts
from reclora_pipeline.finetune.tokenization import encode_prompts, truncate_left
from reclora_pipeline.item_text.embedded_models import embedded_model
from reclora_pipeline.item_text.language_model import load_causal_lm, resolve_model
from reclora_pipeline.item_text.model_template import ModelTemplate, resolve_template

DATABASE = Path("data/03_primary/reclora.duckdb")
# The chat wrapper of the embedded SmolLM2 around each stored prompt's user turn.
USER_START, USER_END = "<|im_start|>user\n", "<|im_end|>"


def valid_user_turns(workspace: Path) -> tuple[list[str], np.ndarray]:
    """The user turns and labels of the Few2Many valid rows, from SmolLM2-wrapped prompts."""
    connection = duckdb.connect(str(workspace / DATABASE), read_only=True)
    try:
        rows = connection.execute(
            "SELECT prompt, label FROM few2many_samples WHERE subset = 'valid' ORDER BY sample_id"
        ).fetchall()
    finally:
        connection.close()
    if not rows or USER_START not in rows[0][0]:
        raise SystemExit("the workspace's prompts are not SmolLM2 chat prompts (run the default)")
    turns = [prompt.split(USER_START, 1)[1].split(USER_END, 1)[0] for prompt, _ in rows]
    return turns, np.array([label for _, label in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("."))
    parser.add_argument("--models", nargs="+", default=["embedded", "embedded-gemma3-270m"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    turns, labels = valid_user_turns(args.workspace)
    results = {}
    for name in args.models:
        embedded = embedded_model(name)
        # An embedded model is converted (once) into the workspace, as item_text would.
        folder = None if embedded is None else args.workspace / embedded.default_folder()
        model, tokenizer = load_causal_lm(resolve_model(name, folder))
        wrapper = resolve_template(ModelTemplate(), tokenizer)
        tokens = [
            truncate_left(ids, 512)
            for ids in encode_prompts(tokenizer, [wrapper.render(turn) for turn in turns])
        ]
        started = time.perf_counter()
        scores = score_prompts(model, tokenizer, tokens, batch_size=16, bf16=False)
        seconds = time.perf_counter() - started
        results[name] = {
            "template": wrapper.name,
            "mean_prompt_tokens": round(float(np.mean([len(ids) for ids in tokens])), 1),
            "prompts_per_s": round(len(tokens) / seconds, 3),
            "zero_shot_valid_auc": round(auc(labels, scores), 4),
        }
        print(name, results[name], flush=True)
    print(json.dumps({"models": results, "n_valid": len(turns), "threads": args.threads,
                      **cpu_info().to_dict()}))  # fmt: skip


if __name__ == "__main__":
    main()
