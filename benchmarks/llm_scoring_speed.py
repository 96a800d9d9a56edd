"""LLM speed on CPU: P(Yes) scoring and adapter training, fp32 vs bfloat16 autocast.

On the real SmolLM2-135M-Instruct (the converted folder of the workspace when present,
else converted from the embedded GGUF into a temporary folder), with synthetic movie
prompts of the project's template and chat format at two lengths (~170 and ~290
tokens: about the median and the upper end of the item_text prompts with K=10):
- scoring samples/s (``score_prompts``, batch ``--batch-size``), fp32 and bf16;
- training samples/s (forward + backward + AdamW, micro batch ``--micro-batch``) of the
  vanilla LoRA and RecLoRA arms, fp32 and bf16 (autocast on the forward);
- the largest |P(Yes) fp32 - P(Yes) bf16| over all prompts (base model);
each with 1 and 2 torch threads. The last stdout line is one JSON object. The machine
is shared, so the load average is reported before and after.

    .venv/bin/python benchmarks/llm_scoring_speed.py [--n-prompts 64 --train-steps 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import yaml

from reclora_pipeline.finetune.arms import build_arm, trainable_parameters
from reclora_pipeline.finetune.scoring import answer_loss, score_prompts
from reclora_pipeline.finetune.tokenization import collate_training, encode_examples
from reclora_pipeline.item_text.language_model import (
    convert_embedded_gguf,
    is_converted,
    load_causal_lm,
)
from reclora_pipeline.item_text.prompts import (
    PromptTemplate,
    answers,
    chat_prompt,
    decode_profile,
    user_text,
)
from reclora_pipeline.personalized_lora import PersonalizedLoraConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
CONVERTED = REPO_ROOT / "data/06_models/smollm2-135m-instruct"
TARGET_TOKENS = (170, 290)
TITLES = [
    "Toy Story (1995)", "GoldenEye (1995)", "Four Rooms (1995)", "Get Shorty (1995)",
    "Copycat (1995)", "Twelve Monkeys (1995)", "Babe (1995)", "Dead Man Walking (1995)",
    "Richard III (1995)", "Seven (Se7en) (1995)", "Usual Suspects, The (1995)",
    "Mighty Aphrodite (1995)", "Postino, Il (1994)", "Braveheart (1995)", "Taxi Driver (1976)",
    "Apollo 13 (1995)", "Batman Forever (1995)", "Belle de jour (1967)", "Crumb (1994)",
    "Star Wars (1977)", "Desperado (1995)", "Legends of the Fall (1994)", "Heat (1995)",
    "Fargo (1996)", "Return of the Jedi (1983)", "Contact (1997)", "English Patient, The (1996)",
    "Scream (1996)", "Liar Liar (1997)", "Air Force One (1997)", "Independence Day (ID4) (1996)",
    "Pulp Fiction (1994)", "Silence of the Lambs, The (1991)", "Jerry Maguire (1996)",
    "Rock, The (1996)", "Raiders of the Lost Ark (1981)", "Godfather, The (1972)",
    "Monty Python and the Holy Grail (1974)", "Empire Strikes Back, The (1980)",
    "Princess Bride, The (1987)",
]  # fmt: skip


def movie_template() -> PromptTemplate:
    parameters = yaml.safe_load((REPO_ROOT / "conf/base/parameters_item_text.yml").read_text())
    return PromptTemplate.from_config("movies", parameters["item_text"]["templates"])


def synthetic_prompts(tokenizer, n: int, target: int, seed: int) -> list[str]:
    """``n`` chat prompts, each with the shortest random history reaching ``target`` tokens."""
    rng = np.random.default_rng(seed)
    template = movie_template()
    prompts = []
    for _ in range(n):
        profile = decode_profile(
            rng.choice(["M", "F"]), int(rng.choice([18, 25, 35, 45])), str(rng.integers(21)), True
        )
        titles = rng.permutation(TITLES)
        history: list[tuple[str, float]] = []
        while True:
            text = chat_prompt(tokenizer, user_text(template, profile, history, titles[-1]))
            length = len(tokenizer(text, add_special_tokens=False).input_ids)
            if length >= target or len(history) == len(titles) - 1:
                break
            history.append((titles[len(history)], float(rng.integers(1, 6))))
        prompts.append(text)
    return prompts


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def model_folder(scratch: Path) -> Path:
    return CONVERTED if is_converted(CONVERTED) else convert_embedded_gguf(scratch / "smollm2")


def time_scoring(model, tokenizer, prompts, bf16: bool, batch_size: int):
    """(samples/s, P(Yes)) of one pass over ``prompts`` after a one-batch warm-up."""
    score_prompts(model, tokenizer, prompts[:batch_size], batch_size=batch_size, bf16=bf16)
    started = time.perf_counter()
    scores = score_prompts(model, tokenizer, prompts, batch_size=batch_size, bf16=bf16)
    return len(prompts) / (time.perf_counter() - started), scores


def time_training(arm_model, examples, bf16: bool, micro_batch: int, steps: int, pad_id: int):
    """Samples/s of AdamW steps (median step time; one warm-up step not counted)."""
    optimizer = torch.optim.AdamW(trainable_parameters(arm_model), lr=1e-4)
    arm_model.train()
    generator = torch.Generator().manual_seed(0)
    user_repr = torch.randn(micro_batch, arm_model.lora_config.user_dim, generator=generator)
    times = []
    for step in range(steps + 1):
        start = (step * micro_batch) % (len(examples) - micro_batch + 1)
        batch = collate_training(examples, range(start, start + micro_batch), pad_id)
        started = time.perf_counter()
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        with autocast:
            loss = answer_loss(arm_model, batch, user_repr=user_repr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - started)
    return micro_batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-prompts", type=int, default=64, help="split over the two lengths")
    parser.add_argument("--batch-size", type=int, default=8, help="scoring batch")
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--train-steps", type=int, default=3, help="timed, after one warm-up")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    results: dict = {"load_average_before": load_average(), "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="llm_speed_") as scratch:
        folder = model_folder(Path(scratch))
        base, tokenizer = load_causal_lm(str(folder))
        per_length = args.n_prompts // len(TARGET_TOKENS)
        prompt_sets = {
            target: synthetic_prompts(tokenizer, per_length, target, seed=target)
            for target in TARGET_TOKENS
        }
        results["prompt_tokens_mean"] = {
            str(target): float(
                np.mean([len(ids) for ids in tokenizer(p, add_special_tokens=False).input_ids])
            )
            for target, p in prompt_sets.items()
        }
        config = PersonalizedLoraConfig()
        for threads in args.threads:
            torch.set_num_threads(threads)
            for target, prompts in prompt_sets.items():
                key = f"{target}tok_{threads}thr"
                scores = {}
                for precision in ("fp32", "bf16"):
                    speed, scores[precision] = time_scoring(
                        base, tokenizer, prompts, precision == "bf16", args.batch_size
                    )
                    results[f"score_{precision}_{key}"] = round(speed, 2)
                diff = np.abs(scores["fp32"] - scores["bf16"])
                results[f"p_yes_max_abs_diff_{key}"] = float(diff.max())
                results[f"p_yes_mean_abs_diff_{key}"] = float(diff.mean())
                labels = [i % 2 for i in range(len(prompts))]
                examples = encode_examples(tokenizer, prompts, answers(labels), max_length=512)
                for arm in ("vanilla_lora", "reclora"):
                    arm_model = build_arm(arm, copy.deepcopy(base), config, n_users=0)
                    for precision in ("fp32", "bf16"):
                        speed = time_training(
                            arm_model,
                            examples,
                            precision == "bf16",
                            args.micro_batch,
                            args.train_steps,
                            tokenizer.pad_token_id,
                        )
                        results[f"train_{arm}_{precision}_{key}"] = round(speed, 3)
                    del arm_model
                print(json.dumps({k: v for k, v in results.items() if key in k}), flush=True)
    results["load_average_after"] = load_average()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
