"""Settings parsed once: typed fields, full keys in errors, closest known keys."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal

import pytest

from reclora_pipeline.errors import SettingError, UnknownSettingError, UserInputError
from reclora_pipeline.settings_hooks import ParsedSettingsHooks, flat_settings
from reclora_pipeline.stage_settings import STAGE_SETTINGS, parse_groups
from reclora_pipeline.typed_settings import check_fields, known_keys, parse, setting
from tests.pipelines.catalog import project_parameters


@dataclass(frozen=True)
class Inner:
    rate: float = setting(0.5, above=0, maximum=1)
    names: tuple[str, ...] = ("a",)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class Outer:
    size: int = setting(4, minimum=1)
    mode: Literal["x", "y"] = "x"
    label: str | None = None
    inner: Inner = setting(default_factory=Inner)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.mode == "y" and self.size < 2:
            raise SettingError("size", self.size, "an integer >= 2 when mode is 'y'")


def test_values_are_converted_and_frozen():
    parsed = parse(Outer, {"size": 3, "inner": {"rate": "1e-1", "names": ["b", "c"]}}, "group")
    assert parsed == Outer(size=3, inner=Inner(rate=0.1, names=("b", "c")))
    with pytest.raises(AttributeError):
        parsed.size = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"size": 0}, "group.size=0 is not allowed: expected an integer >= 1"),
        ({"size": True}, "group.size=True is not allowed: expected an integer"),
        ({"mode": "z"}, "group.mode='z' is not allowed: expected one of 'x', 'y'"),
        ({"label": 3}, "group.label=3 is not allowed: expected a string"),
        ({"inner": {"rate": 0}}, "group.inner.rate=0.0 is not allowed: expected a number > 0"),
        ({"inner": {"names": "a"}}, "group.inner.names='a' is not allowed: expected a list"),
        ({"inner": 5}, "group.inner=5 is not allowed: expected a mapping of settings"),
        ({"mode": "y", "size": 1}, "group.size=1 is not allowed: expected an integer >= 2"),
    ],
)
def test_a_bad_value_names_its_full_key(params, message):
    with pytest.raises(SettingError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse(Outer, params, "group")


@pytest.mark.parametrize(
    ("params", "suggestion"),
    [
        ({"sise": 1}, "group.size"),
        ({"rate": 0.2}, "group.inner.rate"),  # a key that lives in a sub-block
        ({"inner": {"rates": 0.2}}, "group.inner.rate"),
        ({"zzz": 1}, None),
    ],
)
def test_an_unknown_key_is_refused_with_the_closest_known_one(params, suggestion):
    with pytest.raises(UnknownSettingError) as info:
        parse(Outer, params, "group")
    assert info.value.suggestion == suggestion
    if suggestion is None:
        assert "known keys: group.size, group.mode" in str(info.value)


def test_known_keys_lists_the_leaves():
    assert known_keys(Outer, "g.") == [
        "g.size",
        "g.mode",
        "g.label",
        "g.inner.rate",
        "g.inner.names",
    ]


def test_the_project_defaults_parse_for_every_stage():
    parsed = parse_groups(project_parameters(), STAGE_SETTINGS)
    assert set(parsed) == set(STAGE_SETTINGS)
    assert parsed["finetune"].lora.n_experts == 8


# One bad value per stage, each named by its full key.
BAD = [
    ("ingest", ("split_ratios",), [0.5, 0.5, 0.5], "ingest.split_ratios"),
    ("item_text", ("similarity",), "l2", "item_text.similarity"),
    ("ctr_lens", ("training", "batch_size"), 0, "ctr_lens.training.batch_size"),
    ("few2many", ("n_test",), -1, "few2many.n_test"),
    ("finetune", ("lora", "n_experts"), 0, "finetune.lora.n_experts"),
    ("finetune", ("training", "warmup_ratio"), 2, "finetune.training.warmup_ratio"),
    ("evaluation", ("history_buckets",), [10, 5], "evaluation.history_buckets"),
]


@pytest.mark.parametrize(("group", "path", "value", "key"), BAD)
def test_each_stage_refuses_a_bad_value_with_its_full_key(group, path, value, key):
    params = copy.deepcopy(project_parameters())
    parent = params[group]
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    with pytest.raises(SettingError) as info:
        parse_groups(params, [group])
    assert info.value.key == key


def test_the_hook_stops_a_bad_setting_when_the_context_is_created():
    params = copy.deepcopy(project_parameters())
    params["finetune"]["training"]["epoch"] = 2
    context = SimpleNamespace(config_loader={"parameters": params})
    with pytest.raises(
        UserInputError,
        match="finetune.training.epoch is not a setting; did you mean finetune.training.epochs",
    ):
        ParsedSettingsHooks().after_context_created(context=context)


def test_flat_settings_give_one_mlflow_parameter_per_key():
    parsed = parse_groups(project_parameters(), ["finetune"])["finetune"]
    flat = flat_settings("finetune", parsed)
    assert flat["finetune.training.lr"] == pytest.approx(1e-3)
    assert flat["finetune.lora.target_modules"] == ["q_proj", "v_proj"]
    assert flat["finetune.launch.launcher"] == "inline"
    assert all(not isinstance(v, dict) for v in flat.values())
