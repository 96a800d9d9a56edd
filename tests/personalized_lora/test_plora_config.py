"""PersonalizedLoraConfig: defaults, validation, serialisation."""

import json

import pytest

from reclora_pipeline.errors import SettingError, UnknownSettingError, UserInputError
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
    ("kwargs", "key"),
    [
        ({"n_experts": 0}, "n_experts"),
        ({"r": -1}, "r"),
        ({"r": 2.5}, "r"),
        ({"alpha": 0}, "alpha"),
        ({"alpha": "16"}, "alpha"),
        ({"dropout": 1.0}, "dropout"),
        ({"gate_dropout": -0.1}, "gate_dropout"),
        ({"temperature": 0.0}, "temperature"),
        ({"mixing": "weights"}, "mixing"),
        ({"routing": "hard"}, "routing"),
        ({"routing": "topk", "top_k": 9}, "top_k"),
        ({"routing": "topk", "top_k": 0}, "top_k"),
        ({"target_modules": ()}, "target_modules"),
    ],
)
def test_invalid_values_are_rejected_naming_the_field(kwargs, key):
    with pytest.raises(SettingError) as error:
        PersonalizedLoraConfig(**kwargs)
    # The bare field name: the settings parser puts the group's path in front.
    assert error.value.key == key
    assert isinstance(error.value, ValueError) and isinstance(error.value, UserInputError)


def test_invalid_values_say_what_is_allowed():
    with pytest.raises(SettingError, match=r"n_experts=0 is not allowed: expected an integer >= 1"):
        PersonalizedLoraConfig(n_experts=0)
    with pytest.raises(SettingError, match=r"expected one of 'parameter', 'output'"):
        PersonalizedLoraConfig(mixing="weights")
    with pytest.raises(SettingError, match=r"expected an integer in \[1, n_experts=8\]"):
        PersonalizedLoraConfig(routing="topk", top_k=9)


def test_unknown_keys_are_rejected_with_the_closest_known_key():
    with pytest.raises(
        UnknownSettingError, match="num_experts is not a setting; did you mean n_experts"
    ):
        PersonalizedLoraConfig.from_dict({"n_experts": 8, "num_experts": 8})
    with pytest.raises(UnknownSettingError, match="known keys: n_experts, r, alpha"):
        PersonalizedLoraConfig.from_dict({"zzz": 1})
