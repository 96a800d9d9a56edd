"""FinetuneSettings: defaults, validation messages, batch-size arithmetic."""

from __future__ import annotations

import pytest

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.finetune.settings import FinetuneSettings


def test_defaults_follow_the_paper_and_derive_the_batch():
    settings = FinetuneSettings()
    assert settings.weight_decay == 0.0
    assert settings.effective_batch_size() == 4 * 2
    assert settings.effective_batch_size(world_size=4) == 4 * 2 * 4


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("lr", 0, "> 0"),
        ("lr", float("nan"), "> 0"),
        ("lr", "fast", "> 0"),
        ("epochs", 0, ">= 1"),
        ("epochs", True, ">= 1"),
        ("micro_batch_size", 2.5, ">= 1"),
        ("gradient_accumulation_steps", -1, ">= 1"),
        ("batch_size", 0, ">= 1"),
        ("warmup_ratio", 1.5, "[0, 1]"),
        ("weight_decay", -0.1, ">= 0"),
        ("patience", 0, ">= 1"),
        ("seed", -3, ">= 0"),
        ("bf16", "yes", "true or false"),
        ("resume", 1, "true or false"),
        ("engine", "jax", "auto, deepspeed, torch"),
        ("deepspeed_config", "", "DeepSpeed JSON"),
        ("checkpoint_every_steps", -1, ">= 0"),
    ],
)
def test_invalid_values_name_the_parameter_and_what_is_accepted(field, value, accepted):
    with pytest.raises(ParameterError, match=rf"finetune\.{field}") as info:
        FinetuneSettings(**{field: value})
    assert accepted in str(info.value)


def test_yaml_style_float_strings_are_read_as_numbers():
    assert FinetuneSettings(lr="1e-3").lr == pytest.approx(1e-3)


def test_batch_size_must_match_micro_times_accumulation_times_world():
    settings = FinetuneSettings(micro_batch_size=4, gradient_accumulation_steps=2, batch_size=16)
    assert settings.effective_batch_size(world_size=2) == 16
    with pytest.raises(ParameterError) as info:
        settings.effective_batch_size(world_size=1)
    message = str(info.value)
    for part in ("finetune.batch_size=16", "finetune.micro_batch_size",
                 "finetune.gradient_accumulation_steps", "4 × 2 × 1 = 8"):  # fmt: skip
        assert part in message


def test_batch_size_that_no_world_size_can_give_fails_at_once():
    with pytest.raises(ParameterError, match=r"finetune\.batch_size=10 is not a multiple of"):
        FinetuneSettings(micro_batch_size=4, gradient_accumulation_steps=2, batch_size=10)


def test_from_params_rejects_unknown_keys():
    assert FinetuneSettings.from_params({"lr": 0.01}).lr == 0.01
    with pytest.raises(ParameterError, match=r"finetune\.learning_rate.*accepted: lr"):
        FinetuneSettings.from_params({"learning_rate": 0.01})


def test_optimizer_steps_count_a_short_last_group():
    settings = FinetuneSettings(epochs=3, gradient_accumulation_steps=2)
    assert settings.optimizer_steps(5) == 3 * 3
    with pytest.raises(ValueError, match="at least one batch"):
        settings.optimizer_steps(0)
