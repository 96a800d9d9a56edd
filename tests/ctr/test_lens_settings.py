"""The parser refuses bad ctr_lens settings before any node runs."""

from __future__ import annotations

import pytest

from reclora_pipeline.ctr.settings import TRAINED_CRMS, CtrLensSettings
from reclora_pipeline.errors import SettingError, UnknownSettingError
from reclora_pipeline.stage_settings import parse_groups


def _parse(**ctr_lens) -> CtrLensSettings:
    return parse_groups({"ctr_lens": ctr_lens}, ["ctr_lens"])["ctr_lens"]


def test_the_lens_must_be_a_trained_crm():
    with pytest.raises(SettingError, match=r"ctr_lens.crm='xgboost'.*'din', 'sim', 'deepfm'"):
        _parse(crm="xgboost")
    for name in TRAINED_CRMS:
        assert _parse(crm=name).crm == name


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"training": {"batch_size": 0}}, "ctr_lens.training.batch_size=0"),
        ({"training": {"lr": 0}}, "ctr_lens.training.lr=0.0"),
        ({"max_history": 0}, "ctr_lens.max_history=0"),
        ({"torch_threads": 0}, "ctr_lens.torch_threads=0"),
        (
            {"models": {"sim": {"training": {"patience": -1}}}},
            "ctr_lens.models.sim.training.patience=-1",
        ),
    ],
)
def test_out_of_range_values_are_refused(params, key):
    with pytest.raises(SettingError, match=f"^{key} is not allowed"):
        _parse(**params)


def test_unknown_models_and_options_are_refused():
    with pytest.raises(UnknownSettingError, match="ctr_lens.models.xgboost"):
        _parse(models={"xgboost": {}})
    with pytest.raises(
        UnknownSettingError, match="did you mean ctr_lens.models.din.options.hidden_dim"
    ):
        _parse(models={"din": {"options": {"hiden_dim": 8}}})


def test_per_model_training_overrides_the_shared_block():
    settings = _parse(seed=3, training={"lr": 0.01}, models={"deepfm": {"training": {"lr": 0.5}}})
    assert settings.train_config("deepfm").lr == 0.5 and settings.train_config("din").lr == 0.01
    assert settings.train_config("din").seed == 3


def test_torch_threads_default_to_every_core():
    assert _parse().torch_threads is None
    assert _parse(torch_threads=1).torch_threads == 1
