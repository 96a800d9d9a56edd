"""What the personalized gates do on test users: mean expert weight per adapted layer."""

from __future__ import annotations

import numpy as np
import torch

from reclora_pipeline.finetune.arms import ArmModel
from reclora_pipeline.personalized_lora import PersonalizedLoraModel, stacked_gate_weights


@torch.no_grad()
def mean_gate_weights(
    arm_model: ArmModel, user_repr: torch.Tensor | None, user_ids: torch.Tensor | None = None
) -> tuple[np.ndarray, list[str]]:
    """[layers, experts] gate weights averaged over the given users, and the layer names."""
    model = arm_model.model
    if not isinstance(model, PersonalizedLoraModel):
        raise ValueError(f"arm {arm_model.arm!r} has no personalized gates")
    arm_model.eval()
    gate_input = arm_model.gate_input(user_repr, user_ids)
    names, layers = zip(*model.personalized_layers(), strict=True)
    weights = stacked_gate_weights([layer.gate for layer in layers], gate_input)  # [G, b, N]
    return weights.mean(dim=1).float().cpu().numpy(), list(names)
