"""Settings of the finetune stage (the ``finetune`` parameter group).

``finetune.training`` (``FinetuneSettings``) is how an adapter is trained;
``finetune.launch`` how the processes are started; ``finetune.lora`` the LoRA bank
(``PersonalizedLoraConfig``); the top-level keys say which model and arms to train.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reclora_pipeline.compute import Bf16Setting, ModelDtype, check_int8_available, parse_bf16
from reclora_pipeline.ctr.few_shot_lens import FewShotLensTraining
from reclora_pipeline.errors import ParameterError, SettingError
from reclora_pipeline.finetune.arms import ARMS
from reclora_pipeline.personalized_lora import PersonalizedLoraConfig
from reclora_pipeline.typed_settings import check_fields, parse, setting

EngineChoice = Literal["auto", "deepspeed", "torch"]
ENGINES: tuple[str, ...] = ("auto", "deepspeed", "torch")
PREFIX = "finetune.training"
# Arms trained on every run; the others only when listed in finetune.ablations.
MAIN_ARMS = ("reclora", "vanilla_lora")
ABLATIONS = tuple(arm for arm in ARMS if arm not in MAIN_ARMS)


@dataclass(frozen=True)
class FinetuneSettings:
    """How the adapters are trained (``finetune.training``); checked on construction.

    ``batch_size`` is the effective batch (samples per optimizer step over all processes);
    None derives it as ``micro_batch_size * gradient_accumulation_steps * world_size``.
    Weight decay defaults to 0 as in the RecLoRA paper.
    """

    lr: float = setting(1e-3, above=0)
    epochs: int = setting(2, minimum=1)
    micro_batch_size: int = setting(4, minimum=1)
    # Micro-batches per length-sorting window: each window of shuffled rows is sorted by
    # length before it is cut into micro-batches (less padding); 1 = plain shuffled batches.
    length_window: int = setting(16, minimum=1)
    gradient_accumulation_steps: int = setting(2, minimum=1)
    batch_size: int | None = setting(None, minimum=1)
    warmup_ratio: float = setting(0.1, minimum=0, maximum=1)
    weight_decay: float = setting(0.0, minimum=0)
    # Epochs in a row without a better valid AUC before training stops.
    patience: int = setting(1, minimum=1)
    seed: int = setting(0, minimum=0)
    # true | false | "auto": bf16 where the hardware is fast at it (AMX CPUs, CUDA with
    # bf16), fp32 elsewhere; resolved per process by :func:`~reclora_pipeline.compute.choose_precision`.
    bf16: Bf16Setting = setting("auto", parse=parse_bf16)
    # The base model's weights: auto = bf16 on a CUDA GPU when bf16 is on (loaded straight
    # onto the device, one copy per process), fp32 elsewhere; fp32 | bf16 | fp16 (GPU only)
    # | int8 (linear layers in 8 bit, bitsandbytes; adapters in fp32).
    model_dtype: ModelDtype = "auto"
    engine: EngineChoice = "auto"
    deepspeed_config: str = "conf/base/deepspeed/zero2.json"
    # Optimizer steps between mid-epoch checkpoints; 0 checkpoints at epoch ends only.
    checkpoint_every_steps: int = setting(0, minimum=0)
    resume: bool = False
    # Tokens of prompt + answer; a longer prompt loses its oldest tokens.
    max_length: int = setting(512, minimum=8)
    # Prompts per batch when scoring the valid rows after each epoch.
    eval_batch_size: int = setting(16, minimum=1)
    # Training checkpoints go to <checkpoint_folder>/<arm>; None keeps none.
    checkpoint_folder: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.deepspeed_config, Path):
            object.__setattr__(self, "deepspeed_config", str(self.deepspeed_config))
        check_fields(self)
        if self.batch_size is not None:
            per_process = self.micro_batch_size * self.gradient_accumulation_steps
            if self.batch_size % per_process:
                raise SettingError(
                    "batch_size", self.batch_size,
                    f"a multiple of micro_batch_size × gradient_accumulation_steps = "
                    f"{self.micro_batch_size} × {self.gradient_accumulation_steps} = {per_process}",
                    "or null to derive it",
                )  # fmt: skip
        if self.model_dtype == "fp16" and self.bf16 is True:
            raise SettingError(
                "model_dtype", self.model_dtype, "bf16, fp32 or auto when bf16 is true",
                "fp16 weights compute in fp16: set bf16: false (or auto) with them",
            )  # fmt: skip
        if self.model_dtype == "int8":
            check_int8_available(f"{PREFIX}.model_dtype")
        if not self.deepspeed_config.strip():
            raise SettingError(
                "deepspeed_config", self.deepspeed_config,
                "the path of a DeepSpeed JSON file (e.g. conf/base/deepspeed/zero2.json)",
            )  # fmt: skip

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


@dataclass(frozen=True)
class LaunchSettings:
    """How training processes start (``finetune.launch``)."""

    # inline = inside the kedro process (CPU, one GPU); deepspeed = the `deepspeed`
    # launcher as a subprocess on num_gpus GPUs (or the machines of `hostfile`).
    launcher: Literal["inline", "deepspeed"] = "inline"
    num_gpus: int = setting(1, minimum=1)
    hostfile: str | None = None

    def __post_init__(self) -> None:
        check_fields(self)


def parse_ablations(value: Any, key: str) -> tuple[str, ...]:
    """A YAML list, names joined by '+' (the kedro CLI splits --params at commas, so
    ``--params finetune.ablations=a+b`` is the one-flag form), or "all"."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = list(ABLATIONS) if value.strip() == "all" else value.replace("+", " ").split()
    if not isinstance(value, (list, tuple)):
        raise SettingError(
            key, value, f"a list of {list(ABLATIONS)}, names joined by '+', or 'all'"
        )
    for arm in value:
        if arm not in ABLATIONS:
            raise SettingError(key, list(value), f"names from {list(ABLATIONS)}",
                               "reclora and vanilla_lora are always trained")  # fmt: skip
    return tuple(str(arm) for arm in value)


def parse_lora(value: Any, key: str) -> PersonalizedLoraConfig:
    """The LoRA bank; its gate's input width (``user_dim``) comes from the CRM, not from here."""
    if isinstance(value, PersonalizedLoraConfig):
        return value
    return parse(PersonalizedLoraConfig, value, key, ignore=("user_dim",))


@dataclass(frozen=True)
class FinetuneStageSettings:
    """Everything the ``finetune`` parameter group says."""

    # None = the language model item_text prepared; or a hub id / local model folder.
    model: str | None = None
    ablations: tuple[str, ...] = setting((), parse=parse_ablations)
    # None = one thread per available core; more than the cores is capped with a warning.
    torch_threads: int | None = setting(None, minimum=1)
    launch: LaunchSettings = setting(default_factory=LaunchSettings)
    lora: PersonalizedLoraConfig = setting(default_factory=PersonalizedLoraConfig, parse=parse_lora)
    training: FinetuneSettings = setting(default_factory=FinetuneSettings)
    # The lens CRM retrained on the n_train rows alone (the reclora_no_few2many ablation).
    few_shot_lens: FewShotLensTraining = setting(default_factory=FewShotLensTraining)

    def __post_init__(self) -> None:
        check_fields(self)

    def trains(self, arm: str) -> bool:
        """Whether ``arm`` is trained in this run (the main arms always are)."""
        return arm in MAIN_ARMS or arm in self.ablations
