"""PersonalizedLoraConfig: defaults, validation, serialisation."""

import json

import pytest

from reclora_pipeline.personalized_lora import PersonalizedLoraConfig


def test_defaults_follow_the_reference_setting():
    config = PersonalizedLoraConfig()
    assert (config.n_experts, config.r, config.alpha, config.dropout) == (8, 8, 16.0, 0.0)
    assert config.target_modules == ("q_proj", "v_proj")
    assert (config.user_dim, config.gate_hidden, config.gate_dropout) == (256, 60, 0.1)
    assert config.temperature == 1.0
    assert config.mixing == "parameter"
    assert config.routing == "soft"
    assert config.scaling == 2.0
    assert config.gate_top_k is None


def test_topk_routing_exposes_k_to_the_gate():
    assert PersonalizedLoraConfig(routing="topk", top_k=3).gate_top_k == 3


def test_dict_round_trip_through_json():
    config = PersonalizedLoraConfig(n_experts=4, target_modules=["q_proj"], mixing="output")
    data = json.loads(json.dumps(config.to_dict()))
    assert PersonalizedLoraConfig.from_dict(data) == config
    assert config.target_modules == ("q_proj",)
    assert PersonalizedLoraConfig(target_modules="v_proj").target_modules == ("v_proj",)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_experts": 0},
        {"r": -1},
        {"r": 2.5},
        {"alpha": 0},
        {"dropout": 1.0},
        {"gate_dropout": -0.1},
        {"temperature": 0.0},
        {"mixing": "weights"},
        {"routing": "hard"},
        {"routing": "topk", "top_k": 9},
        {"routing": "topk", "top_k": 0},
        {"target_modules": ()},
    ],
)
def test_invalid_values_are_rejected(kwargs):
    with pytest.raises(ValueError):
        PersonalizedLoraConfig(**kwargs)


def test_unknown_keys_are_rejected():
    with pytest.raises(ValueError, match="unknown"):
        PersonalizedLoraConfig.from_dict({"n_experts": 8, "num_experts": 8})
