"""The predict parameter group: parsed once, errors that name the setting."""

from __future__ import annotations

import pytest

from reclora_pipeline.errors import ParameterError, SettingError
from reclora_pipeline.predict.settings import PredictSettings
from reclora_pipeline.stage_settings import parse_groups
from tests.pipelines.catalog import project_parameters


def test_the_shipped_parameters_parse_and_score_reclora():
    settings = parse_groups(project_parameters(), ["predict"])["predict"]
    assert settings == PredictSettings()
    assert settings.arm == "reclora" and settings.candidates is None


def test_missing_candidates_is_a_clear_error_only_when_predict_needs_them():
    with pytest.raises(
        SettingError, match=r"predict\.candidates=None .*--params predict\.candidates"
    ):
        PredictSettings(candidates="  ").candidates_path()
    assert str(PredictSettings(candidates="c.csv").candidates_path()) == "c.csv"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"arm": "lora"}, r"predict\.arm='lora' is not allowed: expected one of reclora, "),
        ({"arm": "reclora_no_few2many"}, r"predict\.arm=.*few-row|Few2Many train rows"),
        (
            {"candidates": "rows.json"},
            r"predict\.candidates='rows\.json' .*\.parquet or \.pq or \.csv",
        ),
        ({"batch_size": 0}, r"predict\.batch_size=0 is not allowed"),
        (
            {"batchsize": 4},
            r"predict\.batchsize is not a setting; did you mean predict\.batch_size",
        ),
    ],
)
def test_bad_settings_name_the_key(values, message):
    with pytest.raises(ParameterError, match=message):
        parse_groups({"predict": values}, ["predict"])
