"""Finetune settings: defaults, errors that name the key, batch-size arithmetic, ablations."""

from __future__ import annotations

import pytest

from reclora_pipeline.errors import ParameterError, SettingError, UnknownSettingError
from reclora_pipeline.finetune.settings import (
    ABLATIONS,
    FinetuneSettings,
    FinetuneStageSettings,
    parse_ablations,
)
from reclora_pipeline.typed_settings import parse


def _stage(params: dict) -> FinetuneStageSettings:
    return parse(FinetuneStageSettings, params, "finetune")


def test_defaults_follow_the_paper_and_derive_the_batch():
    settings = FinetuneSettings()
    assert settings.weight_decay == 0.0
    assert settings.effective_batch_size() == 4 * 2
    assert settings.effective_batch_size(world_size=4) == 4 * 2 * 4


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("lr", 0, "> 0"),
        ("lr", float("nan"), "finite number"),
        ("lr", "fast", "a number"),
        ("epochs", 0, ">= 1"),
        ("epochs", True, "an integer"),
        ("micro_batch_size", 2.5, "an integer"),
        ("gradient_accumulation_steps", -1, ">= 1"),
        ("batch_size", 0, ">= 1"),
        ("warmup_ratio", 1.5, "<= 1"),
        ("weight_decay", -0.1, ">= 0"),
        ("patience", 0, ">= 1"),
        ("seed", -3, ">= 0"),
        ("bf16", "yes", 'true, false or "auto"'),
        ("resume", 1, "true or false"),
        ("engine", "jax", "'auto', 'deepspeed', 'torch'"),
        ("deepspeed_config", "", "DeepSpeed JSON"),
        ("checkpoint_every_steps", -1, ">= 0"),
        ("max_length", 4, ">= 8"),
        ("eval_batch_size", 0, ">= 1"),
    ],
)
def test_invalid_values_name_the_setting_and_what_is_accepted(field, value, accepted):
    with pytest.raises(SettingError) as info:
        FinetuneSettings(**{field: value})
    assert info.value.key == field
    assert accepted in str(info.value)


def test_the_parameter_group_reports_the_full_key():
    with pytest.raises(SettingError, match=r"^finetune\.training\.epochs=0 ") as info:
        _stage({"training": {"epochs": 0}})
    assert info.value.key == "finetune.training.epochs"
    with pytest.raises(UnknownSettingError, match=r"finetune\.training\.learning_rate"):
        _stage({"training": {"learning_rate": 0.01}})


def test_yaml_style_float_strings_are_read_as_numbers():
    assert FinetuneSettings(lr="1e-3").lr == pytest.approx(1e-3)


def test_batch_size_must_match_micro_times_accumulation_times_world():
    settings = FinetuneSettings(micro_batch_size=4, gradient_accumulation_steps=2, batch_size=16)
    assert settings.effective_batch_size(world_size=2) == 16
    with pytest.raises(ParameterError) as info:
        settings.effective_batch_size(world_size=1)
    message = str(info.value)
    for part in ("finetune.training.batch_size=16", "finetune.training.micro_batch_size",
                 "finetune.training.gradient_accumulation_steps", "4 × 2 × 1 = 8"):  # fmt: skip
        assert part in message


def test_batch_size_that_no_world_size_can_give_fails_at_once():
    with pytest.raises(SettingError, match=r"batch_size=10 is not allowed: expected a multiple"):
        FinetuneSettings(micro_batch_size=4, gradient_accumulation_steps=2, batch_size=10)
    with pytest.raises(SettingError, match=r"^finetune\.training\.batch_size=6 "):
        _stage({"training": {"batch_size": 6}})


def test_optimizer_steps_count_a_short_last_group():
    settings = FinetuneSettings(epochs=3, gradient_accumulation_steps=2)
    assert settings.optimizer_steps(5) == 3 * 3
    with pytest.raises(ValueError, match="at least one batch"):
        settings.optimizer_steps(0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ()),
        ([], ()),
        (["reclora_no_lens"], ("reclora_no_lens",)),
        ("reclora_no_lens+reclora_no_retriever", ("reclora_no_lens", "reclora_no_retriever")),
        ("all", ABLATIONS),
    ],
)
def test_ablations_accept_the_yaml_and_command_line_forms(value, expected):
    assert parse_ablations(value, "ablations") == expected
    assert _stage({"ablations": value}).ablations == expected


def test_unknown_ablation_names_the_full_key():
    with pytest.raises(SettingError, match=r"^finetune\.ablations=\['reclora_no_gate'\]") as info:
        _stage({"ablations": "reclora_no_gate"})
    assert "always trained" in str(info.value)


def test_main_arms_always_train_and_ablations_only_when_listed():
    settings = _stage({"ablations": ["reclora_no_lens"]})
    assert settings.trains("reclora") and settings.trains("vanilla_lora")
    assert settings.trains("reclora_no_lens") and not settings.trains("reclora_no_retriever")
