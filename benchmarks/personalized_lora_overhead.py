"""Training-step overhead of personalized LoRA versus peft's vanilla LoRA.

Arms (same base weights, same inputs, same optimizer):
  vanilla    peft LoRA (r, alpha, targets from PersonalizedLoraConfig)
  parameter  personalized LoRA, parameter mixing (default, reference code)
  output     personalized LoRA, output mixing (paper equation)

Time: all arms live in this process; one training step (forward + backward + AdamW) of
each arm is timed in turn, the arm order rotating every repetition, so slow drifts of a
shared CPU hit every arm alike. Reported: median wall-clock step time (time_ratio), the
median of per-repetition ratios (paired) and median process CPU time (cpu_time_ratio).

Memory: one fresh subprocess per arm and memory repetition (arms interleaved). It loads
the model, builds the arm, runs one no-grad forward (pages in memory-mapped weights),
returns freed heap to the OS (malloc_trim; fixed glibc thresholds, see MALLOC_ENV),
resets the kernel's peak-RSS mark (/proc/self/clear_refs), runs training steps and
reads VmHWM. memory_ratio compares
peak RSS minus RSS before the steps: activations, gradients and optimizer state, i.e.
what training adds to the loaded model. peak_rss_ratio compares the whole peak RSS.

The last stdout line is one JSON object (time_ratio, memory_ratio, ...).

    .venv/bin/python benchmarks/personalized_lora_overhead.py [--repeats 10 --batch 8 ...]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from reclora_pipeline.item_text.language_model import convert_embedded_gguf
from reclora_pipeline.personalized_lora import (
    PersonalizedLoraConfig,
    get_personalized_model,
    get_vanilla_lora_model,
)

ARMS = ("vanilla", "parameter", "output")
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = REPO_ROOT / "data" / "06_models" / "smollm2-135m-instruct"
USER_DIM = PersonalizedLoraConfig().user_dim
# glibc raises its mmap threshold after large frees and then keeps freed activations in
# the heap, so peak RSS wandered by ~3% between identical runs. Fixed thresholds make
# every large tensor its own mapping, returned on free: peak RSS then follows live memory
# (repeat runs agree within 1 MiB).
MALLOC_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


# -- model ----------------------------------------------------------------------------------


def tiny_config():
    """A small random Llama for smoke runs of this script (no files needed)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=128,
    )


def load_base(args: argparse.Namespace) -> nn.Module:
    """Fresh fp32 base model (SmolLM2 folder, or the tiny random Llama with --tiny)."""
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    if args.tiny:
        torch.manual_seed(0)  # every arm gets identical base weights
        return LlamaForCausalLM(tiny_config())
    return AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)


def build_arm(arm: str, base: nn.Module) -> nn.Module:
    """Wrap ``base`` for one arm, in training mode."""
    torch.manual_seed(1)
    if arm == "vanilla":
        model = get_vanilla_lora_model(base, PersonalizedLoraConfig())
    elif arm in ("parameter", "output"):
        model = get_personalized_model(base, PersonalizedLoraConfig(mixing=arm))
    else:
        raise ValueError(f"unknown arm {arm!r}; choose from {ARMS}")
    return model.train()


# -- one training step ----------------------------------------------------------------------


def make_inputs(args: argparse.Namespace, vocab_size: int) -> dict[str, torch.Tensor]:
    """Same token ids and user vectors for every arm."""
    generator = torch.Generator().manual_seed(2)
    input_ids = torch.randint(0, vocab_size, (args.batch, args.tokens), generator=generator)
    user_repr = torch.randn(args.batch, USER_DIM, generator=generator)
    return {"input_ids": input_ids, "user_repr": user_repr}


class TrainingStep:
    """One arm's training step: forward + backward + AdamW on the trainable parameters."""

    def __init__(self, arm: str, model: nn.Module, inputs: dict[str, torch.Tensor]) -> None:
        self.model = model
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=1e-4)
        self.kwargs = {"input_ids": inputs["input_ids"], "labels": inputs["input_ids"]}
        if arm != "vanilla":
            self.kwargs["user_repr"] = inputs["user_repr"]

    def __call__(self) -> float:
        """Run the step; returns the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.model(**self.kwargs).loss
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def forward_only(self) -> None:
        """Inference pass: touches every weight, keeps no activations, grads or state."""
        self.model(**self.kwargs)


def make_step(arm: str, model: nn.Module, inputs: dict[str, torch.Tensor]) -> TrainingStep:
    return TrainingStep(arm, model, inputs)


# -- time -----------------------------------------------------------------------------------


def time_arms(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Wall and process-CPU seconds per step and arm, interleaved, arm order rotating."""
    steps = {}
    for arm in args.arms:
        base = load_base(args)
        steps[arm] = make_step(arm, build_arm(arm, base), make_inputs(args, base.config.vocab_size))
        for _ in range(args.warmup):
            steps[arm]()
    times: dict[str, dict[str, list[float]]] = {arm: {"wall": [], "cpu": []} for arm in args.arms}
    for rep in range(args.repeats):
        shift = rep % len(args.arms)
        for arm in args.arms[shift:] + args.arms[:shift]:
            wall, cpu = time.perf_counter(), time.process_time()
            steps[arm]()
            times[arm]["cpu"].append(time.process_time() - cpu)
            times[arm]["wall"].append(time.perf_counter() - wall)
        print(
            f"rep {rep + 1}/{args.repeats}: "
            + ", ".join(f"{arm} {times[arm]['wall'][-1]:.3f}s" for arm in args.arms),
            file=sys.stderr,
        )
    return times


# -- memory ---------------------------------------------------------------------------------


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory(args: argparse.Namespace, arm: str) -> dict[str, float]:
    """Peak RSS added by ``args.memory_steps`` training steps of ``arm`` (MiB)."""
    base = load_base(args)
    step = make_step(arm, build_arm(arm, base), make_inputs(args, base.config.vocab_size))
    # Weights may be memory-mapped from the safetensors file: page them all in first, so
    # the delta holds what training adds (activations, gradients, optimizer state).
    step.forward_only()
    gc.collect()
    # Give back heap freed so far, so "before" is what the process really holds.
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before = _proc_status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    for _ in range(args.memory_steps):
        step()
    peak = _proc_status_kib("VmHWM")
    return {
        "rss_before_mib": before / 1024,
        "peak_mib": peak / 1024,
        "delta_mib": (peak - before) / 1024,
    }


def memory_in_subprocess(args: argparse.Namespace, arm: str) -> dict[str, float]:
    """Run :func:`measure_memory` for ``arm`` in a fresh interpreter."""
    command = [sys.executable, __file__, "--memory-worker", arm, *forwarded_flags(args)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=MALLOC_ENV)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_arms(args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    """Memory figures per arm, fresh process each, arm order rotating."""
    results: dict[str, list[dict[str, float]]] = {arm: [] for arm in args.arms}
    for rep in range(args.memory_repeats):
        shift = rep % len(args.arms)
        for arm in args.arms[shift:] + args.arms[:shift]:
            results[arm].append(memory_in_subprocess(args, arm))
            print(f"memory {arm}: {results[arm][-1]}", file=sys.stderr)
    return results


# -- CLI ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per arm")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per arm")
    parser.add_argument("--memory-repeats", type=int, default=3, help="subprocesses per arm")
    parser.add_argument("--memory-steps", type=int, default=2, help="steps per memory run")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--tiny", action="store_true", help="tiny random Llama (smoke run)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-worker", choices=ARMS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if "vanilla" not in args.arms:
        parser.error("the vanilla arm is the reference of every ratio")
    return args


def forwarded_flags(args: argparse.Namespace) -> list[str]:
    """Flags a memory worker needs to rebuild the same arm and inputs."""
    flags = [
        f"--batch={args.batch}",
        f"--tokens={args.tokens}",
        f"--memory-steps={args.memory_steps}",
        f"--threads={args.threads}",
        f"--model-dir={args.model_dir}",
    ]
    return flags + (["--tiny"] if args.tiny else [])


def summarise(
    args: argparse.Namespace,
    times: dict[str, dict[str, list[float]]],
    memory: dict[str, list[dict[str, float]]] | None,
    load_at_start: float,
) -> dict[str, object]:
    """The final JSON record."""
    wall = {arm: statistics.median(t["wall"]) for arm, t in times.items()}
    cpu = {arm: statistics.median(t["cpu"]) for arm, t in times.items()}
    record: dict[str, object] = {
        "model": "tiny-random-llama" if args.tiny else "SmolLM2-135M-Instruct (fp32)",
        "batch": args.batch,
        "tokens": args.tokens,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "loadavg_1min_start_end": [round(load_at_start, 2), round(os.getloadavg()[0], 2)],
        "step_s_median": {arm: round(t, 4) for arm, t in wall.items()},
        "step_cpu_s_median": {arm: round(t, 4) for arm, t in cpu.items()},
    }
    for arm in args.arms:
        if arm == "vanilla":
            continue
        prefix = "" if arm == "parameter" else f"{arm}_"
        record[f"{prefix}time_ratio"] = round(wall[arm] / wall["vanilla"], 4)
        # Paired per repetition: each rep's arms ran back to back under similar load.
        paired = [a / v for a, v in zip(times[arm]["wall"], times["vanilla"]["wall"], strict=True)]
        record[f"{prefix}time_ratio_paired_median"] = round(statistics.median(paired), 4)
        record[f"{prefix}cpu_time_ratio"] = round(cpu[arm] / cpu["vanilla"], 4)
    if memory is not None:
        delta = {
            arm: statistics.median(r["delta_mib"] for r in runs) for arm, runs in memory.items()
        }
        peak = {arm: statistics.median(r["peak_mib"] for r in runs) for arm, runs in memory.items()}
        record["memory_metric"] = (
            "peak RSS minus pre-step RSS, fresh subprocess per arm, glibc mmap/trim "
            "thresholds fixed at 128 KiB"
        )
        record["step_memory_mib"] = {arm: round(v, 1) for arm, v in delta.items()}
        record["peak_rss_mib"] = {arm: round(v, 1) for arm, v in peak.items()}
        for arm in args.arms:
            if arm == "vanilla":
                continue
            prefix = "" if arm == "parameter" else f"{arm}_"
            record[f"{prefix}memory_ratio"] = round(delta[arm] / delta["vanilla"], 4)
            record[f"{prefix}peak_rss_ratio"] = round(peak[arm] / peak["vanilla"], 4)
    return record


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_worker:
        print(json.dumps(measure_memory(args, args.memory_worker)))
        return {}
    if not args.tiny:
        convert_embedded_gguf(args.model_dir)
    load_at_start = os.getloadavg()[0]  # the CPU may be shared: record how busy it was
    memory = None if args.skip_memory else memory_arms(args)
    times = time_arms(args)
    record = summarise(args, times, memory, load_at_start)
    print(json.dumps(record, sort_keys=True))
    return record


if __name__ == "__main__":
    main()
