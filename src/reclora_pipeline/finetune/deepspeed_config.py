"""Reading a DeepSpeed JSON config and filling its "auto" fields from the settings.

DeepSpeed configs (``conf/base/deepspeed/*.json``) leave the batch fields as ``"auto"``;
they are filled from :class:`FinetuneSettings` before ``deepspeed.initialize``:

- ``zero2.json``: ZeRO-2, optimizer state and gradients partitioned over processes.
- ``zero3.json``: ZeRO-3, parameters partitioned too (they are empty outside a gather).
- ``zero2_offload.json``: ZeRO-2 with the optimizer state and step on the CPU
  (``zero_force_ds_cpu_optimizer: false`` lets DeepSpeed offload our torch AdamW;
  ``pin_memory`` speeds GPU-to-host copies and is a no-op on a CPU-only machine).

``bf16.enabled: "auto"`` becomes ``finetune.bf16`` on CUDA and false on CPU, where the
trainer autocasts the forward to bfloat16 instead. ``gradient_clipping`` is 1.0, the norm
the torch engine clips to. ``overlap_comm`` is off (nothing to overlap in one process;
turn it on for several GPUs), buckets are 5e7 elements, and ``steps_per_print`` is large
because the trainer's progress bar reports. An ``optimizer`` or ``scheduler`` section is
refused: they come from the ``finetune`` parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.finetune.engine_base import DEFAULT_MAX_GRAD_NORM
from reclora_pipeline.finetune.settings import PREFIX, FinetuneSettings

# The batch fields a config may leave as "auto", filled from the settings.
BATCH_FIELDS = ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps")


def load_deepspeed_config(
    path: str | Path, settings: FinetuneSettings, world_size: int = 1
) -> dict[str, Any]:
    """Read a DeepSpeed JSON config and fill its "auto" fields from ``settings``."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(
            f"{PREFIX}.deepspeed_config: {path} does not exist (resolved from "
            f"{Path.cwd()}); give the path of a DeepSpeed JSON file such as "
            f"conf/base/deepspeed/zero2.json"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ParameterError(
            f"{PREFIX}.deepspeed_config: {path} is not valid JSON: {exc.msg} at line "
            f"{exc.lineno}, column {exc.colno}"
        ) from exc
    if not isinstance(config, dict):
        raise ParameterError(f"{PREFIX}.deepspeed_config: {path} must hold a JSON object")
    for section in ("optimizer", "scheduler"):
        if section in config:
            raise ParameterError(
                f"{path}: remove the {section!r} section; the optimizer (AdamW) and its "
                f"schedule come from {PREFIX}.lr, {PREFIX}.weight_decay and {PREFIX}.warmup_ratio"
            )
    expected = {
        "train_batch_size": settings.effective_batch_size(world_size),
        "train_micro_batch_size_per_gpu": settings.micro_batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
    }
    for key, value in expected.items():
        given = config.get(key, "auto")
        if given != "auto" and given != value:
            raise ParameterError(
                f"{path}: {key} is {given!r} but the {PREFIX} parameters give {value} "
                f"({PREFIX}.micro_batch_size={settings.micro_batch_size}, "
                f"{PREFIX}.gradient_accumulation_steps={settings.gradient_accumulation_steps}, "
                f'world size {world_size}); set it to "auto"'
            )
        config[key] = value
    if config.get("gradient_clipping", "auto") == "auto":
        config["gradient_clipping"] = DEFAULT_MAX_GRAD_NORM
    bf16 = config.setdefault("bf16", {"enabled": "auto"})
    if isinstance(bf16, dict) and bf16.get("enabled") == "auto":
        # On CPU the trainer autocasts instead: DeepSpeed would cast the whole model.
        half = settings.model_dtype != "fp16"
        bf16["enabled"] = bool(settings.bf16) and half and torch.cuda.is_available()
    if settings.model_dtype == "fp16":
        # fp16 weights train only under DeepSpeed's loss scaling (GPUs without bf16).
        config.setdefault("fp16", {"enabled": True})
    zero = config.get("zero_optimization", {})
    stage = zero.get("stage", 0) if isinstance(zero, dict) else None
    if stage not in (0, 1, 2, 3):
        raise ParameterError(f"{path}: zero_optimization.stage must be 0, 1, 2 or 3, got {stage!r}")
    if isinstance(zero.get("offload_optimizer"), dict):
        # We pass a torch AdamW; DeepSpeed would otherwise insist on its compiled CPU Adam.
        config.setdefault("zero_force_ds_cpu_optimizer", False)
    left = list(_auto_fields(config))
    if left:
        raise ParameterError(
            f'{path}: "auto" is only understood for {", ".join(BATCH_FIELDS)}, '
            f"gradient_clipping and bf16.enabled; set a value for {', '.join(left)}"
        )
    return config


def _auto_fields(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _auto_fields(item, f"{prefix}{key}.")
    elif value == "auto":
        yield prefix.rstrip(".")
