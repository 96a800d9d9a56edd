"""save_pretrained / from_pretrained: exact round trip and clear mismatch errors."""

import json
import warnings

import pytest
import torch

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.personalized_lora import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    AdapterMismatchError,
    PersonalizedLoraConfig,
    PersonalizedLoraLinear,
    PersonalizedLoraModel,
    get_personalized_model,
)
from tests.personalized_lora.plora_helpers import (
    randomize_banks,
    tiny_llama,
    token_ids,
    user_vectors,
)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(5)
    model = get_personalized_model(tiny_llama(), PersonalizedLoraConfig(n_experts=3, r=4))
    randomize_banks(model)
    with torch.no_grad():  # gates too, so the whole adapter state is checked
        for _, layer in model.personalized_layers():
            layer.gate.norm.weight.uniform_(0.5, 1.5)
    model.save_pretrained(tmp_path / "adapter")
    return model.eval(), tmp_path / "adapter"


def _has_adapters(model) -> bool:
    return any(isinstance(m, PersonalizedLoraLinear) for m in model.modules())


def test_files_and_recorded_base_model(saved):
    _, folder = saved
    assert {p.name for p in folder.iterdir()} == {ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME}
    payload = json.loads((folder / ADAPTER_CONFIG_NAME).read_text())
    assert payload["config"]["n_experts"] == 3 and payload["config"]["r"] == 4
    base = payload["base_model"]
    assert base["architecture"] == "LlamaForCausalLM"
    assert (base["hidden_size"], base["num_hidden_layers"]) == (64, 2)
    assert base["target_shapes"]["model.layers.1.self_attn.v_proj"] == [64, 32]
    assert "name_or_path" in base
    assert base["vocab_size"] == 128 and len(base["fingerprint"]) == 16


def test_round_trip_is_bit_exact(saved):
    model, folder = saved
    loaded = PersonalizedLoraModel.from_pretrained(tiny_llama(), folder)
    original_state, loaded_state = model.adapter_state_dict(), loaded.adapter_state_dict()
    assert original_state.keys() == loaded_state.keys()
    assert all(torch.equal(original_state[k], loaded_state[k]) for k in original_state)
    ids, h = token_ids(), user_vectors()
    with torch.no_grad():
        assert torch.equal(model(ids, user_repr=h).logits, loaded(ids, user_repr=h).logits)
    assert not loaded.training
    assert loaded.get_nb_trainable_parameters()[0] == 0
    trainable = PersonalizedLoraModel.from_pretrained(tiny_llama(), folder, is_trainable=True)
    assert trainable.get_nb_trainable_parameters()[0] == model.get_nb_trainable_parameters()[0]


def test_mismatching_base_model_is_refused_untouched(saved):
    _, folder = saved
    other = tiny_llama(hidden=32)
    with pytest.raises(AdapterMismatchError, match="hidden_size"):
        PersonalizedLoraModel.from_pretrained(other, folder)
    assert not _has_adapters(other)
    with pytest.raises(AdapterMismatchError, match="num_hidden_layers"):
        PersonalizedLoraModel.from_pretrained(tiny_llama(layers=3), folder)


def test_edited_config_not_matching_weights_is_refused(saved):
    _, folder = saved
    path = folder / ADAPTER_CONFIG_NAME
    payload = json.loads(path.read_text())
    payload["config"]["r"] = 8
    path.write_text(json.dumps(payload))
    base = tiny_llama()
    with pytest.raises(AdapterMismatchError, match="resized"):
        PersonalizedLoraModel.from_pretrained(base, folder)
    assert not _has_adapters(base)
    payload["config"]["r"] = 4
    payload["config"]["target_modules"] = ["q_proj", "v_proj", "k_proj"]
    path.write_text(json.dumps(payload))
    with pytest.raises(AdapterMismatchError, match="adapted modules differ"):
        PersonalizedLoraModel.from_pretrained(tiny_llama(), folder)


def test_same_weights_under_another_name_load_silently(saved):
    _, folder = saved
    base = tiny_llama()
    base.config._name_or_path = "somewhere/else"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fingerprint vouches for the weights
        PersonalizedLoraModel.from_pretrained(base, folder)


def test_other_weights_of_the_same_shapes_are_refused(saved):
    _, folder = saved
    base = tiny_llama(seed=1)
    with pytest.raises(AdapterMismatchError) as error:
        PersonalizedLoraModel.from_pretrained(base, folder)
    message = str(error.value)
    assert str(folder) in message and "same shapes but different weights" in message
    assert message.count("(llama, hidden 64, 2 layers, vocab 128, weights ") == 2
    assert isinstance(error.value, UserInputError)
    assert not _has_adapters(base)


def _drop_recent_signature_keys(folder):
    """Make the adapter look saved before fingerprints: no vocab_size, no fingerprint."""
    path = folder / ADAPTER_CONFIG_NAME
    payload = json.loads(path.read_text())
    del payload["base_model"]["vocab_size"], payload["base_model"]["fingerprint"]
    path.write_text(json.dumps(payload))


def test_an_adapter_saved_without_fingerprint_still_loads(saved):
    model, folder = saved
    _drop_recent_signature_keys(folder)
    loaded = PersonalizedLoraModel.from_pretrained(tiny_llama(), folder)
    original_state, loaded_state = model.adapter_state_dict(), loaded.adapter_state_dict()
    assert all(torch.equal(original_state[k], loaded_state[k]) for k in original_state)
    # Nothing vouches for the weights then: another name warns, as before.
    base = tiny_llama()
    base.config._name_or_path = "somewhere/else"
    with pytest.warns(UserWarning, match="somewhere/else"):
        PersonalizedLoraModel.from_pretrained(base, folder)
    with pytest.raises(AdapterMismatchError, match="hidden_size 64 vs 32"):
        PersonalizedLoraModel.from_pretrained(tiny_llama(hidden=32), folder)


def test_missing_folder_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match=ADAPTER_CONFIG_NAME):
        PersonalizedLoraModel.from_pretrained(tiny_llama(), tmp_path / "nothing")
