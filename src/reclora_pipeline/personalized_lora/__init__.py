"""Personalized LoRA (RecLoRA): user-gated banks of meta-LoRAs on a frozen LLM.

Library code only (no Kedro): build with :func:`get_personalized_model`, call with one
user representation per batch row, save/load with ``save_pretrained``/``from_pretrained``.
"""

from reclora_pipeline.personalized_lora.config import PersonalizedLoraConfig
from reclora_pipeline.personalized_lora.context import MissingUserRepresentationError, UserContext
from reclora_pipeline.personalized_lora.gate import UserGate, stacked_gate_weights
from reclora_pipeline.personalized_lora.layer import PersonalizedLoraLinear
from reclora_pipeline.personalized_lora.mixing import output_mixing, parameter_mixing
from reclora_pipeline.personalized_lora.model import PersonalizedLoraModel, get_personalized_model
from reclora_pipeline.personalized_lora.persistence import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    AdapterMismatchError,
)
from reclora_pipeline.personalized_lora.vanilla import get_vanilla_lora_model, vanilla_lora_config

__all__ = [
    "ADAPTER_CONFIG_NAME",
    "ADAPTER_WEIGHTS_NAME",
    "AdapterMismatchError",
    "MissingUserRepresentationError",
    "PersonalizedLoraConfig",
    "PersonalizedLoraLinear",
    "PersonalizedLoraModel",
    "UserContext",
    "UserGate",
    "get_personalized_model",
    "get_vanilla_lora_model",
    "output_mixing",
    "parameter_mixing",
    "stacked_gate_weights",
    "vanilla_lora_config",
]
