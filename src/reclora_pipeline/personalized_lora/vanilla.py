"""Vanilla (non-personalized) LoRA baseline built with peft from the same config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from reclora_pipeline.personalized_lora.config import PersonalizedLoraConfig

if TYPE_CHECKING:
    from peft import LoraConfig, PeftModel

# peft is imported where it is used: it costs seconds (and pulls in bitsandbytes when that
# is installed), and every `kedro` command imports this package to check the settings.


def vanilla_lora_config(config: PersonalizedLoraConfig) -> LoraConfig:
    """peft ``LoraConfig`` with the rank, alpha, dropout and targets of ``config``."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        target_modules=list(config.target_modules),
        lora_dropout=config.dropout,
        bias="none",
    )


def get_vanilla_lora_model(
    base_model: nn.Module, config: PersonalizedLoraConfig | None = None
) -> PeftModel:
    """One shared LoRA (the baseline arm); ``n_experts``, mixing and gate settings are unused."""
    from peft import get_peft_model

    return get_peft_model(base_model, vanilla_lora_config(config or PersonalizedLoraConfig()))
