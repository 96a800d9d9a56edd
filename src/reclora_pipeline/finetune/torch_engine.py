"""The plain torch engine: one process, AdamW, linear schedule, gradient clipping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.finetune.engine_base import (
    CLIENT_KEY,
    DEFAULT_MAX_GRAD_NORM,
    TrainingEngine,
    read_latest,
    write_latest,
)
from reclora_pipeline.finetune.optimization import (
    adamw,
    linear_schedule,
    trainable_named_parameters,
)
from reclora_pipeline.finetune.settings import PREFIX, FinetuneSettings

STATE_FILE = "torch_engine_state.pt"


class TorchEngine(TrainingEngine):
    """Single-process loop: AdamW on the trainable parameters, linear schedule, clipping."""

    def __init__(
        self,
        model: nn.Module,
        settings: FinetuneSettings,
        n_training_steps: int,
        *,
        device: torch.device | str | None = None,
        max_grad_norm: float = DEFAULT_MAX_GRAD_NORM,
    ) -> None:
        super().__init__(settings)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.name = f"torch ({self.device.type})"
        self._named = trainable_named_parameters(model)
        self.max_grad_norm = max_grad_norm
        self.optimizer = adamw([p for _, p in self._named], settings)
        self.scheduler = linear_schedule(self.optimizer, settings, n_training_steps)
        self._global_step = 0

    def _backward(self, loss: torch.Tensor, boundary: bool) -> None:
        (loss / self.settings.gradient_accumulation_steps).backward()

    def _step(self, boundary: bool) -> None:
        if not boundary:
            return
        params = [p for _, p in self._named]
        if self.max_grad_norm and self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._global_step += 1

    @property
    def global_step(self) -> int:
        return self._global_step

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def save_checkpoint(self, folder: Path, tag: str, client_state: dict[str, Any]) -> Path:
        self._check_can_checkpoint()
        target = Path(folder) / tag
        target.mkdir(parents=True, exist_ok=True)
        state = {
            "params": {name: p.detach().cpu() for name, p in self._named},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "global_step": self._global_step,
            CLIENT_KEY: client_state,
        }
        # Write then rename: an interrupted save must not leave a half file behind `latest`.
        partial = target / (STATE_FILE + ".partial")
        torch.save(state, partial)
        partial.replace(target / STATE_FILE)
        write_latest(Path(folder), tag)
        return target

    def load_checkpoint(self, folder: Path) -> dict[str, Any] | None:
        tag = read_latest(Path(folder))
        if tag is None:
            return None
        path = Path(folder) / tag / STATE_FILE
        if not path.is_file():
            raise UserInputError(
                f"checkpoint {Path(folder) / tag} was not written by the torch engine; resume "
                f"with the engine that wrote it ({PREFIX}.engine) or set {PREFIX}.resume: false"
            )
        # weights_only: only tensors and plain containers are unpickled.
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved = state["params"]
        own = dict(self._named)
        if set(saved) != set(own):
            raise UserInputError(
                f"checkpoint {path} holds parameters {sorted(set(saved) ^ set(own))[:5]} that "
                f"the model does not match; set {PREFIX}.resume: false to start over"
            )
        with torch.no_grad():
            for name, param in own.items():
                param.copy_(saved[name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._global_step = int(state["global_step"])
        return state[CLIENT_KEY]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().to("cpu", copy=True) for name, p in self._named}
