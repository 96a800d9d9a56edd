"""GPU check: fine-tune with DeepSpeed ZeRO-2, ZeRO-3 and ZeRO-2 on 8-bit weights, then score
prompts, on one CUDA GPU.

Each part runs in its own process (a fresh CUDA context, so peak memory is that part's,
and a crash in one part leaves the others' figures): ``zero2``, ``zero3`` and
``zero2_int8`` (the base's linear layers in 8 bit, bitsandbytes) train the reclora arm with the project's ``train_arm`` for ``--steps`` optimizer steps on synthetic
history-like prompts with Yes/No answers and random user representations; ``score``
computes P(Yes) of ``--n-score`` prompts with ``score_prompts``. Printed per part:
samples/s or prompts/s, and peak GPU memory; the last stdout line is one JSON object.

    .venv/bin/python benchmarks/gpu_check.py [--steps 300 --n-score 2000 --model embedded]
    .venv/bin/python benchmarks/gpu_check.py --cpu-smoke   # a tiny run on CPU, to check it
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from reclora_pipeline.finetune.arms import build_arm
from reclora_pipeline.finetune.request import FinetuneRequest
from reclora_pipeline.finetune.run import Subset, train_arm
from reclora_pipeline.finetune.scoring import score_prompts
from reclora_pipeline.finetune.settings import FinetuneSettings
from reclora_pipeline.item_text.language_model import is_converted, load_causal_lm, resolve_model
from reclora_pipeline.item_text.prompts import chat_prompt
from reclora_pipeline.personalized_lora import PersonalizedLoraConfig

REPO = Path(__file__).resolve().parents[1]
CONVERTED = REPO / "data" / "06_models" / "smollm2-135m-instruct"
# zero2_int8: ZeRO-2 on a base whose linear layers are in 8 bit (model_dtype int8).
PARTS = ("zero2", "zero3", "zero2_int8", "score")
USER_DIM, MICRO_BATCH, K_HISTORY = 256, 8, 10


def synthetic_rows(tokenizer, n: int, seed: int) -> Subset:
    """``n`` ReLLa-like prompts (rated history, target) with random labels and user vectors."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    prompts = []
    for _ in range(n):
        films = [f"'{i}. Film {rng.integers(1, 4000)} ({rng.integers(1950, 2001)}), "
                 f"{rng.integers(1, 6)} stars'" for i in range(K_HISTORY)]  # fmt: skip
        text = (f"The user watched the following movies in order in the past, and rated them: "
                f"[{', '.join(films)}]. Based on the movies the user has watched, deduce if the "
                f"user will like the movie ***Film {rng.integers(1, 4000)}***. "
                "You should ONLY tell me yes or no.")  # fmt: skip
        prompts.append(chat_prompt(tokenizer, text))
    return Subset(
        prompts=prompts,
        answers=["Yes." if y else "No." for y in labels],
        labels=labels.astype(np.int64),
        user_repr=torch.from_numpy(rng.normal(size=(n, USER_DIM)).astype(np.float32)),
        user_ids=torch.from_numpy(rng.integers(1, 100, n)),
        sample_ids=np.arange(n, dtype=np.int64),
    )


def lora() -> PersonalizedLoraConfig:
    return PersonalizedLoraConfig(user_dim=USER_DIM)


def peak_gib() -> float | None:
    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


def train_part(args: argparse.Namespace, part: str, scratch: Path) -> dict:
    """``args.steps`` optimizer steps of reclora under the ZeRO stage of ``part`` (one
    epoch), on 8-bit base weights for ``*_int8``."""
    stage, _, weights = part.partition("_")
    settings = FinetuneSettings(
        lr=1e-4, epochs=1, micro_batch_size=MICRO_BATCH, gradient_accumulation_steps=1,
        engine="deepspeed", deepspeed_config=str(REPO / f"conf/base/deepspeed/{stage}.json"),
        bf16=False if args.cpu_smoke else "auto", max_length=512, eval_batch_size=32,
        model_dtype="int8" if weights == "int8" else "auto",
    )  # fmt: skip
    request = FinetuneRequest(arm="reclora", model=args.model, n_users=100, training=settings,
                              lora=lora())  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    train_rows = synthetic_rows(tokenizer, args.steps * MICRO_BATCH, seed=0)
    valid_rows = synthetic_rows(tokenizer, 4 * MICRO_BATCH, seed=1)
    epochs: list[dict] = []  # the epoch records, kept even if train_arm fails afterwards
    started = time.perf_counter()
    result: dict = {}
    try:
        report = train_arm(request, train_rows=train_rows, valid_rows=valid_rows,
                           output_folder=scratch / f"adapter-{part}", progress=False,
                           on_epoch_end=epochs.append)  # fmt: skip
        result.update(engine=report["engine"], optimizer_steps=report["optimizer_steps"])
    except RuntimeError as error:
        # E.g. restoring the best adapter after training; the training figures still count.
        result["error_after_training" if epochs else "error"] = str(error)[:300]
    last = epochs[-1] if epochs else {}
    return {
        **result,
        "samples_per_s": round(last["samples_per_s"], 2) if last else None,
        "train_loss": last.get("train_loss"),
        "wall_s": round(time.perf_counter() - started, 1),
        "peak_gpu_gib": peak_gib(),
    }


def score_part(args: argparse.Namespace) -> dict:
    """P(Yes) of ``args.n_score`` prompts through a fresh reclora arm, in bf16 on the GPU."""
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    base, tokenizer = load_causal_lm(args.model, dtype=dtype, device="cuda" if cuda else None)
    model = build_arm("reclora", base, lora(), n_users=100).to(base.device)
    rows = synthetic_rows(tokenizer, args.n_score, seed=2)
    batch = 64 if cuda else 8
    # Warm-up: CUDA kernels and allocator, not part of the rate.
    score_prompts(model, tokenizer, rows.prompts[:batch], user_repr=rows.user_repr[:batch],
                  batch_size=batch, bf16=cuda)  # fmt: skip
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    scores = score_prompts(model, tokenizer, rows.prompts, user_repr=rows.user_repr,
                           batch_size=batch, bf16=cuda)  # fmt: skip
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    tokens = sum(len(ids) for ids in tokenizer(rows.prompts, add_special_tokens=False).input_ids)
    return {
        "prompts": len(scores),
        "prompts_per_s": round(len(scores) / seconds, 1),
        "prompt_tokens_per_s": round(tokens / seconds),
        "finite_scores": bool(np.isfinite(scores).all()),
        "peak_gpu_gib": peak_gib(),
    }


def run_part(args: argparse.Namespace, scratch: Path) -> dict:
    """One part in this process (the child side)."""
    if args.part == "score":
        return score_part(args)
    return train_part(args, args.part, scratch)


def prepare_model(args: argparse.Namespace, scratch: Path) -> str:
    """A loadable model folder: the tiny test model (smoke), or ``--model`` resolved
    (``embedded`` = SmolLM2-135M converted from its GGUF, into ``scratch`` unless done)."""
    if args.cpu_smoke:
        sys.path.insert(0, str(REPO))
        from tests.tiny_models import save_tiny_llama

        return str(save_tiny_llama(scratch / "tiny", ["Yes", "No", ".", "Film", "stars"]))
    folder = CONVERTED if is_converted(CONVERTED) else scratch / "smollm2-135m-instruct"
    return resolve_model(args.model, folder)


def child_command(args: argparse.Namespace, part: str, model: str, scratch: Path) -> list[str]:
    flags = ["--cpu-smoke"] if args.cpu_smoke else []
    return [sys.executable, __file__, "--part", part, "--model", model, "--scratch", str(scratch),
            "--steps", str(args.steps), "--n-score", str(args.n_score), *flags]  # fmt: skip


def run_all(args: argparse.Namespace) -> dict:
    """Every part in its own process; a failed part reports its error and the tail of its log."""
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="gpu_check-"))
    model = prepare_model(args, scratch)
    results: dict = {"model": model, "device": device_name(), "steps": args.steps}
    for part in PARTS:
        done = subprocess.run(child_command(args, part, model, scratch), capture_output=True,
                              text=True, timeout=args.part_timeout)  # fmt: skip
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and lines:
            results[part] = json.loads(lines[-1])
        else:
            results[part] = {"error": f"exit {done.returncode}", "log": done.stderr[-1500:]}
        print(f"{part}: {json.dumps(results[part])}", flush=True)
    return results


def device_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (smoke)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per ZeRO stage")
    parser.add_argument("--n-score", type=int, default=2000, help="prompts to score")
    parser.add_argument("--model", default="embedded", help="embedded, a hub id or a folder")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny run on CPU (a check)")
    parser.add_argument("--part-timeout", type=float, default=900, help="seconds per part")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--scratch", help="scratch folder (default: a new temporary one)")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.cpu_smoke:
        print("gpu_check needs a CUDA GPU (torch.cuda.is_available() is False); "
              "--cpu-smoke runs a tiny version on CPU", file=sys.stderr)  # fmt: skip
        return 2
    if args.cpu_smoke:
        args.steps, args.n_score = min(args.steps, 3), min(args.n_score, 16)
    if args.part:
        print(json.dumps(run_part(args, Path(args.scratch))))
        return 0
    results = run_all(args)
    print(json.dumps(results))
    failed = any(key.startswith("error") for part in PARTS for key in results[part])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
