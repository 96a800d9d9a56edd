"""The optimizer and learning-rate schedule both training engines use."""

from __future__ import annotations

import math

import torch
from torch import nn

from reclora_pipeline.finetune.settings import FinetuneSettings


def trainable_named_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) for every parameter with ``requires_grad``; an error if none."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameters (requires_grad=True)")
    return named


def adamw(params: list[nn.Parameter], settings: FinetuneSettings) -> torch.optim.AdamW:
    """torch AdamW with the learning rate and weight decay of ``settings``."""
    return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)


def linear_schedule(
    optimizer: torch.optim.Optimizer, settings: FinetuneSettings, n_training_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over ``warmup_ratio`` of the steps, then linear decay to 0."""
    from transformers import get_linear_schedule_with_warmup

    warmup = math.ceil(settings.warmup_ratio * n_training_steps)
    return get_linear_schedule_with_warmup(optimizer, warmup, n_training_steps)
