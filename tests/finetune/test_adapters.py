"""Saving and loading trained arms."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.finetune.adapters import (
    ARM_FILE,
    USER_EMBEDDING_FILE,
    AdapterFolderError,
    ArmMismatchError,
    load_arm,
    save_arm,
)
from reclora_pipeline.finetune.arms import ARMS, build_arm
from reclora_pipeline.personalized_lora import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    AdapterMismatchError,
)
from tests.finetune.test_arms import CONFIG, N_USERS, TOKENIZER, logits, train, user_inputs
from tests.tiny_models import tiny_llama

# The keys of a base-model signature, in arm.json and adapter_config.json alike.
SIGNATURE_KEYS = {
    "name_or_path", "architecture", "model_type", "hidden_size", "num_hidden_layers",
    "target_shapes", "vocab_size", "fingerprint", "weight_format",
}  # fmt: skip


def fresh_base(seed: int = 0) -> LlamaForCausalLM:
    base = tiny_llama(len(TOKENIZER), seed=seed)
    base.config._name_or_path = f"tiny-llama-seed-{seed}"
    return base


def trained_arm(arm: str):
    arm_model = build_arm(arm, fresh_base(), CONFIG, n_users=N_USERS)
    train(arm_model, steps=2)  # LoRA up-projections start at zero: make them matter
    return arm_model


@pytest.mark.parametrize("arm", ARMS)
def test_a_saved_arm_loads_to_identical_outputs(tmp_path, arm):
    arm_model = trained_arm(arm)
    folder = save_arm(arm_model, tmp_path / arm)
    assert json.loads((folder / ARM_FILE).read_text())["arm"] == arm
    loaded = load_arm(folder, fresh_base())
    assert loaded.arm == arm and not loaded.training
    assert not any(param.requires_grad for param in loaded.parameters())
    users = user_inputs()
    torch.testing.assert_close(logits(loaded, **users), logits(arm_model, **users))


def test_the_no_lens_user_embedding_is_saved(tmp_path):
    arm_model = trained_arm("reclora_no_lens")
    folder = save_arm(arm_model, tmp_path / "no_lens")
    saved = load_file(str(folder / USER_EMBEDDING_FILE))["weight"]
    torch.testing.assert_close(saved, arm_model.user_embedding.weight.detach())
    loaded = load_arm(folder, fresh_base())
    torch.testing.assert_close(loaded.user_embedding.weight, saved)


def test_saving_again_replaces_the_folder(tmp_path):
    first = trained_arm("reclora_no_lens")
    folder = save_arm(first, tmp_path / "arm")
    second = trained_arm("vanilla_lora")
    save_arm(second, folder)
    assert not (folder / USER_EMBEDDING_FILE).exists()
    assert load_arm(folder, fresh_base()).arm == "vanilla_lora"
    assert [p.name for p in tmp_path.iterdir()] == ["arm"]  # no staging leftovers


@pytest.mark.parametrize("arm", ["reclora", "vanilla_lora"])
def test_another_base_model_with_the_same_shapes_is_refused(tmp_path, arm):
    folder = save_arm(trained_arm(arm), tmp_path / arm)
    with pytest.raises(ArmMismatchError) as error:
        load_arm(folder, fresh_base(seed=1))
    message = str(error.value)
    assert str(folder) in message
    assert "saved for base model 'tiny-llama-seed-0'" in message
    assert "'tiny-llama-seed-1'" in message and "different weights" in message
    # Both families of errors catch it.
    assert isinstance(error.value, AdapterMismatchError) and isinstance(error.value, UserInputError)


def test_an_arm_whose_adapter_config_predates_fingerprints_still_loads(tmp_path):
    arm_model = trained_arm("reclora")
    folder = save_arm(arm_model, tmp_path / "reclora")
    assert set(json.loads((folder / ARM_FILE).read_text())["base_model"]) == SIGNATURE_KEYS
    path = folder / ADAPTER_CONFIG_NAME
    payload = json.loads(path.read_text())
    assert set(payload["base_model"]) == SIGNATURE_KEYS
    # Folders saved before the fingerprint had it in arm.json only.
    del payload["base_model"]["vocab_size"], payload["base_model"]["fingerprint"]
    path.write_text(json.dumps(payload))
    loaded = load_arm(folder, fresh_base())
    users = user_inputs()
    torch.testing.assert_close(logits(loaded, **users), logits(arm_model, **users))


def test_a_base_model_of_another_size_is_refused(tmp_path):
    folder = save_arm(trained_arm("reclora"), tmp_path / "reclora")
    torch.manual_seed(0)
    bigger = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(TOKENIZER), hidden_size=64, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2,
        )
    )  # fmt: skip
    with pytest.raises(ArmMismatchError, match="hidden_size 32 vs 64"):
        load_arm(folder, bigger)


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(AdapterFolderError, match=f"adapter folder {tmp_path / 'nowhere'} does not"):
        load_arm(tmp_path / "nowhere", fresh_base())


@pytest.mark.parametrize(
    ("removed", "message"),
    [
        (ARM_FILE, "has no arm.json"),
        (ADAPTER_WEIGHTS_NAME, r"'reclora_no_lens' is incomplete: missing \['adapter_model"),
        (USER_EMBEDDING_FILE, r"missing \['user_embedding.safetensors'\]"),
    ],
)
def test_a_folder_missing_a_file_says_which(tmp_path, removed, message):
    folder = save_arm(trained_arm("reclora_no_lens"), tmp_path / "arm")
    (folder / removed).unlink()
    with pytest.raises(AdapterFolderError, match=message) as error:
        load_arm(folder, fresh_base())
    assert str(folder) in str(error.value)


def test_an_unknown_arm_in_arm_json_is_refused(tmp_path):
    folder = save_arm(trained_arm("reclora"), tmp_path / "arm")
    payload = json.loads((folder / ARM_FILE).read_text())
    (folder / ARM_FILE).write_text(json.dumps({**payload, "arm": "mystery"}))
    with pytest.raises(UserInputError, match="unknown arm 'mystery'"):
        load_arm(folder, fresh_base())
