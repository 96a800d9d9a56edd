"""Would int8 matmuls make LLM scoring fast enough on a CPU without bf16? Speed and scores.

torch's dynamic quantisation (``quantize_dynamic``: int8 weights per tensor, activations
quantised per batch, fbgemm kernels) of every ``nn.Linear`` of the converted model,
against the fp32 model, on the same real prompts: the raw forward rate (best of
``--rounds`` interleaved rounds) and how far P(Yes) moves. Last stdout line: JSON.

    .venv/bin/python benchmarks/int8_dynamic_scoring.py --workspace W --n-prompts 64
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from llm_forward_rates import raw_forward_seconds, real_prompts, workspace_model

from reclora_pipeline.compute import cpu_info
from reclora_pipeline.finetune.scoring import score_prompts
from reclora_pipeline.finetune.tokenization import encode_prompts, truncate_left
from reclora_pipeline.item_text.language_model import load_causal_lm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("."))
    parser.add_argument("--n-prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_causal_lm(str(workspace_model(args.workspace)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notice that eager quantisation moves to torchao
        quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, torch.qint8)
    prompts = real_prompts(args.workspace, args.n_prompts)
    tokens = [truncate_left(ids, 512) for ids in encode_prompts(tokenizer, prompts)]
    pad_id = tokenizer.pad_token_id or 0
    models = {"fp32": model, "int8_dynamic": quantized}
    rates: dict[str, float] = {}
    for candidate in models.values():  # warm-up: kernel selection, first-touch of weights
        raw_forward_seconds(candidate, tokens[: args.batch_size], pad_id, args.batch_size, False)
    for _ in range(args.rounds):
        for name, candidate in models.items():
            seconds = raw_forward_seconds(candidate, tokens, pad_id, args.batch_size, False)
            rates[name] = max(rates.get(name, 0.0), len(tokens) / seconds)
    scores = {
        name: score_prompts(candidate, tokenizer, tokens, batch_size=args.batch_size, bf16=False)
        for name, candidate in models.items()
    }
    difference = np.abs(scores["fp32"] - scores["int8_dynamic"])
    result = {
        "prompts_per_s": {name: round(rate, 3) for name, rate in rates.items()},
        "speedup": round(rates["int8_dynamic"] / rates["fp32"], 3),
        "p_yes_max_abs_diff": round(float(difference.max()), 4),
        "p_yes_mean_abs_diff": round(float(difference.mean()), 4),
        "p_yes_correlation": round(
            float(np.corrcoef(scores["fp32"], scores["int8_dynamic"])[0, 1]), 4
        ),
        "n_prompts": len(tokens),
        "threads": args.threads,
        **cpu_info().to_dict(),
    }
    for key, value in result.items():
        print(f"{key}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
