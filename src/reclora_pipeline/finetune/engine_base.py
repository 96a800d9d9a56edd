"""The training-engine interface and the checkpoint layout both engines share.

Both engines train only the parameters with ``requires_grad`` (the adapters) with
``torch.optim.AdamW`` and a linear warmup + decay schedule, accumulate gradients over
``gradient_accumulation_steps`` micro-batches (loss scaled by 1/accumulation), clip the
gradient norm and step the scheduler once per optimizer step, so on one process they give
the same result up to float rounding.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reclora_pipeline.finetune.settings import FinetuneSettings

DEFAULT_MAX_GRAD_NORM = 1.0
# Everything the trainer passes as client_state goes under one key, clear of DeepSpeed's own.
CLIENT_KEY = "reclora_client_state"
LATEST_FILE = "latest"  # the file name DeepSpeed uses too: one layout for both engines


class EngineUnavailableError(RuntimeError):
    """``finetune.engine: deepspeed`` was asked for but DeepSpeed cannot run here."""


class TrainingEngine(ABC):
    """Forward/backward/step of one training process, with checkpoints.

    Call ``engine.model(...)`` for the forward, then ``backward(loss)`` and ``step()`` for
    every micro-batch. The optimizer steps when the micro-batch closes an accumulation
    group; ``backward(loss, force_boundary=True)`` closes a short last group of an epoch.
    """

    name: str
    model: nn.Module
    device: torch.device
    is_rank_zero: bool = True

    def __init__(self, settings: FinetuneSettings) -> None:
        self.settings = settings
        self._micro_in_group = 0  # micro-batches already accumulated in the open group
        self._boundary: bool | None = None  # decided by backward(), consumed by step()

    # -- the training step ----------------------------------------------------------------

    @property
    def is_accumulation_boundary(self) -> bool:
        """Whether the current micro-batch closes an accumulation group (steps the optimizer)."""
        if self._boundary is not None:
            return self._boundary
        return self._micro_in_group + 1 >= self.settings.gradient_accumulation_steps

    def backward(self, loss: torch.Tensor, *, force_boundary: bool = False) -> None:
        """Accumulate the gradients of ``loss`` (the micro-batch mean; scaled here)."""
        if self._boundary is not None:
            raise RuntimeError("backward() called twice without step() in between")
        self._boundary = force_boundary or self.is_accumulation_boundary
        self._backward(loss, self._boundary)

    def step(self) -> bool:
        """End the micro-step; returns True when the optimizer and scheduler stepped."""
        if self._boundary is None:
            raise RuntimeError("step() called without backward()")
        boundary, self._boundary = self._boundary, None
        self._step(boundary)
        self._micro_in_group = 0 if boundary else self._micro_in_group + 1
        return boundary

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for forward passes: bfloat16 autocast where the engine does not cast."""
        if self.settings.bf16 and not self._casts_itself():
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _casts_itself(self) -> bool:
        return False

    def _check_can_checkpoint(self) -> None:
        # Accumulated gradients are not saved: a checkpoint inside a group could not resume.
        if self._micro_in_group or self._boundary is not None:
            raise RuntimeError("checkpoints are taken only right after an optimizer step")

    @abstractmethod
    def _backward(self, loss: torch.Tensor, boundary: bool) -> None: ...

    @abstractmethod
    def _step(self, boundary: bool) -> None: ...

    @property
    @abstractmethod
    def global_step(self) -> int:
        """Optimizer steps taken so far (restored by :meth:`load_checkpoint`)."""

    @property
    @abstractmethod
    def lr(self) -> float:
        """Current learning rate."""

    # -- state ----------------------------------------------------------------------------

    @abstractmethod
    def save_checkpoint(self, folder: Path, tag: str, client_state: dict[str, Any]) -> Path:
        """Write weights, optimizer, scheduler, counters and ``client_state`` to folder/tag."""

    @abstractmethod
    def load_checkpoint(self, folder: Path) -> dict[str, Any] | None:
        """Restore the latest checkpoint in ``folder``; its client_state, or None if none."""

    @abstractmethod
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Full CPU copies of the trainable parameters, keyed by their name in the model."""


def write_latest(folder: Path, tag: str) -> None:
    """Point ``folder/latest`` at ``tag`` (write then rename: never a half-written file)."""
    partial = folder / (LATEST_FILE + ".partial")
    partial.write_text(tag, encoding="utf-8")
    partial.replace(folder / LATEST_FILE)


def read_latest(folder: Path) -> str | None:
    """The tag ``folder/latest`` names, or None when there is no checkpoint."""
    latest = folder / LATEST_FILE
    if not latest.is_file():
        return None
    return latest.read_text(encoding="utf-8").strip() or None
