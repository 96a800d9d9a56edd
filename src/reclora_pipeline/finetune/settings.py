"""Training hyper-parameters of the finetune stage (the ``finetune`` parameters block)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from reclora_pipeline.errors import ParameterError

EngineChoice = Literal["auto", "deepspeed", "torch"]
ENGINES: tuple[str, ...] = ("auto", "deepspeed", "torch")
PREFIX = "finetune"


@dataclass(frozen=True)
class FinetuneSettings:
    """How the adapters are trained; validated on construction.

    ``batch_size`` is the effective batch (samples per optimizer step over all processes);
    None derives it as ``micro_batch_size * gradient_accumulation_steps * world_size``.
    Weight decay defaults to 0 as in the RecLoRA paper.
    """

    lr: float = 1e-3
    epochs: int = 2
    micro_batch_size: int = 4
    gradient_accumulation_steps: int = 2
    batch_size: int | None = None
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    # Epochs in a row without a better valid AUC before training stops.
    patience: int = 1
    seed: int = 0
    bf16: bool = False
    engine: EngineChoice = "auto"
    deepspeed_config: str = "conf/base/deepspeed/zero2.json"
    # Optimizer steps between mid-epoch checkpoints; 0 checkpoints at epoch ends only.
    checkpoint_every_steps: int = 0
    resume: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.deepspeed_config, Path):
            object.__setattr__(self, "deepspeed_config", str(self.deepspeed_config))
        for name in ("lr", "warmup_ratio", "weight_decay"):
            # PyYAML reads `1e-3` (no dot) as a string; accept it rather than fail on style.
            value = getattr(self, name)
            if isinstance(value, str):
                with contextlib.suppress(ValueError):  # not a number: reported below
                    object.__setattr__(self, name, float(value))
        _check_number("lr", self.lr, "a number > 0", lambda v: v > 0)
        for name in ("epochs", "micro_batch_size", "gradient_accumulation_steps", "patience"):
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("seed", "checkpoint_every_steps"):
            _check_int(name, getattr(self, name), minimum=0)
        if self.batch_size is not None:
            _check_int("batch_size", self.batch_size, minimum=1, none_ok=True)
            per_process = self.micro_batch_size * self.gradient_accumulation_steps
            if self.batch_size % per_process:
                raise ParameterError(
                    f"{PREFIX}.batch_size={self.batch_size} is not a multiple of "
                    f"{PREFIX}.micro_batch_size × {PREFIX}.gradient_accumulation_steps = "
                    f"{self.micro_batch_size} × {self.gradient_accumulation_steps} = "
                    f"{per_process}; leave it null to derive it"
                )
        _check_number(
            "warmup_ratio", self.warmup_ratio, "a number in [0, 1]", lambda v: 0 <= v <= 1
        )
        _check_number("weight_decay", self.weight_decay, "a number >= 0", lambda v: v >= 0)
        for name in ("bf16", "resume"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(
                    f"{PREFIX}.{name} must be true or false, got {getattr(self, name)!r}"
                )
        if self.engine not in ENGINES:
            raise ParameterError(
                f"{PREFIX}.engine must be one of {', '.join(ENGINES)}, got {self.engine!r}"
            )
        if not isinstance(self.deepspeed_config, str) or not self.deepspeed_config.strip():
            raise ParameterError(
                f"{PREFIX}.deepspeed_config must be the path of a DeepSpeed JSON file "
                f"(e.g. conf/base/deepspeed/zero2.json), got {self.deepspeed_config!r}"
            )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> FinetuneSettings:
        """Build from a parameters mapping; unknown keys are an error (likely typos)."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ParameterError(
                f"unknown {PREFIX} parameter(s) {', '.join(f'{PREFIX}.{k}' for k in unknown)}; "
                f"accepted: {', '.join(known)}"
            )
        return cls(**params)

    def effective_batch_size(self, world_size: int = 1) -> int:
        """Samples per optimizer step over ``world_size`` processes; checks ``batch_size``."""
        if not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
        derived = self.micro_batch_size * self.gradient_accumulation_steps * world_size
        if self.batch_size is not None and self.batch_size != derived:
            raise ParameterError(
                f"{PREFIX}.batch_size={self.batch_size} does not match "
                f"{PREFIX}.micro_batch_size × {PREFIX}.gradient_accumulation_steps × world size = "
                f"{self.micro_batch_size} × {self.gradient_accumulation_steps} × {world_size} = "
                f"{derived}; change one of them or leave {PREFIX}.batch_size null"
            )
        return derived

    def optimizer_steps(self, micro_batches_per_epoch: int) -> int:
        """Optimizer steps of the whole run (a short last accumulation group still steps)."""
        if micro_batches_per_epoch < 1:
            raise ValueError(f"an epoch needs at least one batch, got {micro_batches_per_epoch}")
        per_epoch = math.ceil(micro_batches_per_epoch / self.gradient_accumulation_steps)
        return self.epochs * per_epoch


def _check_int(name: str, value: Any, *, minimum: int, none_ok: bool = False) -> None:
    # bool is an int subclass: `epochs: true` in YAML is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        accepted = f"an integer >= {minimum}" + (" or null" if none_ok else "")
        raise ParameterError(f"{PREFIX}.{name} must be {accepted}, got {value!r}")


def _check_number(name: str, value: Any, accepted: str, ok: Any) -> None:
    valid = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and ok(value)
    )
    if not valid:
        raise ParameterError(f"{PREFIX}.{name} must be {accepted}, got {value!r}")
