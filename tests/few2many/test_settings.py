"""The parser refuses bad few2many settings before any node runs."""

from __future__ import annotations

import pytest

from reclora_pipeline.errors import SettingError
from reclora_pipeline.few2many.settings import Few2ManySettings
from reclora_pipeline.stage_settings import parse_groups


def _parse(**few2many) -> Few2ManySettings:
    return parse_groups({"few2many": few2many}, ["few2many"])["few2many"]


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(SettingError, match=r"few2many.strategy='active'.*'random'"):
        _parse(strategy="active")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("n_train", 0, "an integer >= 1"),
        ("n_test", True, "an integer"),
        ("n_valid", 2.5, "an integer"),
    ],
)
def test_subset_sizes_must_be_positive_integers(key, value, expected):
    with pytest.raises(
        SettingError, match=f"^few2many.{key}={value!r} is not allowed: expected {expected}"
    ):
        _parse(**{key: value})


def test_only_the_train_subset_follows_the_strategy():
    settings = _parse(strategy="stratified_user", n_train=3, n_valid=4, n_test=5)
    assert settings.subsets() == {
        "train": (3, "stratified_user"),
        "valid": (4, "random"),
        "test": (5, "random"),
    }
