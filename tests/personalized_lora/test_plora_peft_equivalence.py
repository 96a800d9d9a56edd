"""One expert with weight one is ordinary LoRA: compare with peft holding the same A, B."""

import copy

import pytest
import torch

from reclora_pipeline.personalized_lora import (
    PersonalizedLoraConfig,
    get_personalized_model,
    get_vanilla_lora_model,
    vanilla_lora_config,
)
from tests.personalized_lora.plora_helpers import tiny_llama, token_ids, user_vectors

PEFT_PREFIX = "base_model.model."


def _peft_lora_layers(peft_model):
    """{name in the base model: peft LoRA layer}."""
    return {
        name.removeprefix(PEFT_PREFIX): module
        for name, module in peft_model.named_modules()
        if isinstance(getattr(module, "lora_A", None), torch.nn.ModuleDict)
    }


def test_vanilla_arm_uses_the_same_hyper_parameters():
    config = PersonalizedLoraConfig(r=4, alpha=12, dropout=0.05, target_modules=("q_proj",))
    lora = vanilla_lora_config(config)
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (4, 12, 0.05)
    assert set(lora.target_modules) == {"q_proj"}
    model = get_vanilla_lora_model(tiny_llama(), config)
    trainable, _ = model.get_nb_trainable_parameters()
    assert trainable == 2 * 4 * (64 + 64)  # two layers, r * (in + out) each


@pytest.mark.parametrize("mixing", ["parameter", "output"])
def test_single_expert_matches_peft_lora(mixing):
    config = PersonalizedLoraConfig(n_experts=1, mixing=mixing)
    base = tiny_llama()
    vanilla = get_vanilla_lora_model(copy.deepcopy(base), config).eval()
    personalized = get_personalized_model(base, config).eval()
    peft_layers = _peft_lora_layers(vanilla)
    ours = dict(personalized.personalized_layers())
    assert set(peft_layers) == set(ours)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, layer in ours.items():
            peft_a = peft_layers[name].lora_A["default"].weight  # [r, in]
            peft_b = peft_layers[name].lora_B["default"].weight  # [out, r]
            peft_b.copy_(torch.randn(peft_b.shape, generator=generator) * 0.1)
            layer.lora_A[0].copy_(peft_a.T)
            layer.lora_B[0].copy_(peft_b.T)
    ids = token_ids()
    with torch.no_grad():
        expected = vanilla(input_ids=ids).logits
        actual = personalized(ids, user_repr=user_vectors()).logits
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad(), vanilla.disable_adapter():
        plain = vanilla(input_ids=ids).logits
    assert (plain - expected).abs().max() > 1e-3  # the adapters really act
