"""The DeepSpeed ZeRO engine: our AdamW and schedule, partitioned by DeepSpeed."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.finetune.deepspeed_setup import import_deepspeed
from reclora_pipeline.finetune.engine_base import CLIENT_KEY, TrainingEngine, read_latest
from reclora_pipeline.finetune.optimization import (
    adamw,
    linear_schedule,
    trainable_named_parameters,
)
from reclora_pipeline.finetune.settings import PREFIX, FinetuneSettings


class DeepSpeedEngine(TrainingEngine):
    """DeepSpeed ZeRO (stage from the config) with our own AdamW and schedule.

    Build it with :func:`~reclora_pipeline.finetune.engine.make_engine`, which validates
    the config and sets up the process group. ``model`` is the DeepSpeed engine (call it
    like the wrapped module).
    """

    def __init__(
        self,
        model: nn.Module,
        settings: FinetuneSettings,
        n_training_steps: int,
        config: dict[str, Any],
    ) -> None:
        super().__init__(settings)
        deepspeed = import_deepspeed()
        self._deepspeed = deepspeed
        named = trainable_named_parameters(model)
        self._trainable_names = [name for name, _ in named]
        # Our own torch AdamW: DeepSpeed's fused/CPU Adam compile C++ (minutes) on first use.
        optimizer = adamw([p for _, p in named], settings)
        scheduler = linear_schedule(optimizer, settings, n_training_steps)
        self._ds, _, _, _ = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=config
        )
        self.model = self._ds
        self.device = torch.device(self._ds.device)
        self.is_rank_zero = self._ds.global_rank == 0
        self.stage = int(config.get("zero_optimization", {}).get("stage", 0))
        self._bf16 = bool(config.get("bf16", {}).get("enabled", False))
        offload = config.get("zero_optimization", {}).get("offload_optimizer", {})
        offload_tag = "-offload" if offload.get("device", "none") != "none" else ""
        accelerator = deepspeed.get_accelerator()
        self.name = (
            f"deepspeed-zero{self.stage}{offload_tag} "
            f"({accelerator.device_name()}, {accelerator.communication_backend_name()})"
        )

    def _casts_itself(self) -> bool:
        return self._bf16

    def _backward(self, loss: torch.Tensor, boundary: bool) -> None:
        # We own the boundary (epochs may end inside a group); DeepSpeed scales by 1/accum.
        self._ds.set_gradient_accumulation_boundary(boundary)
        self._ds.backward(loss)

    def _step(self, boundary: bool) -> None:
        self._ds.step()  # steps optimizer + scheduler only at the boundary set above

    @property
    def global_step(self) -> int:
        return int(self._ds.global_steps)

    @property
    def lr(self) -> float:
        return float(self._ds.get_lr()[0])

    def save_checkpoint(self, folder: Path, tag: str, client_state: dict[str, Any]) -> Path:
        self._check_can_checkpoint()
        # The frozen base model is not saved: resuming rebuilds it from its own files.
        self._ds.save_checkpoint(
            str(folder),
            tag=tag,
            client_state={CLIENT_KEY: client_state},
            exclude_frozen_parameters=True,
        )
        return Path(folder) / tag

    def load_checkpoint(self, folder: Path) -> dict[str, Any] | None:
        tag = read_latest(Path(folder))
        if tag is None:
            return None
        if not list((Path(folder) / tag).glob("*model_states.pt")):
            raise UserInputError(
                f"checkpoint {Path(folder) / tag} was not written by DeepSpeed; resume with "
                f"the engine that wrote it ({PREFIX}.engine) or set {PREFIX}.resume: false"
            )
        # Non-strict: the frozen parameters were left out of the checkpoint on purpose.
        path, client = self._ds.load_checkpoint(str(folder), tag=tag, load_module_strict=False)
        if path is None:
            raise UserInputError(f"DeepSpeed could not load the checkpoint {Path(folder) / tag}")
        return client[CLIENT_KEY]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        wanted = set(self._trainable_names)
        named = [(n, p) for n, p in self._ds.module.named_parameters() if n in wanted]
        if self._bf16:
            # The module holds bf16 copies; the optimizer's fp32 master weights are exact.
            from deepspeed.utils import safe_get_full_fp32_param

            full = {n: safe_get_full_fp32_param(p) for n, p in named}
            if all(v is not None for v in full.values()):
                return {n: v.detach().to("cpu", copy=True) for n, v in full.items()}
        # ZeRO-3 parameters are empty outside a gather; modifier_rank=None: read-only.
        gather = (
            self._deepspeed.zero.GatheredParameters([p for _, p in named], modifier_rank=None)
            if self.stage == 3
            else contextlib.nullcontext()
        )
        with gather:
            return {n: p.detach().to("cpu", copy=True) for n, p in named}
