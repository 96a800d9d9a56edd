"""benchmarks/few2many_scaling.py: its settings overrides and its report (the training
itself is the finetune library's, tested there)."""

import json

import numpy as np
import pyarrow as pa
import pytest

from reclora_pipeline.errors import UnknownSettingError
from tests.benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("few2many_scaling")


def test_set_overrides_the_finetune_defaults(bench):
    settings = bench.stage_settings(["lora.temperature=5", "training.epochs=2"])
    defaults = bench.stage_settings([])

    assert (settings.lora.temperature, settings.training.epochs) == (5.0, 2)
    assert settings.lora.n_experts == defaults.lora.n_experts
    with pytest.raises(UnknownSettingError, match="did you mean finetune.lora.temperature"):
        bench.stage_settings(["lora.temperatur=5"])


def test_crm_probabilities_follow_the_asked_sample_order(bench):
    crm = pa.table({"sample_id": [7, 3, 5], "din": [0.7, 0.3, 0.5]})
    np.testing.assert_array_equal(bench.aligned("din", np.array([5, 7]), crm, "din"), [0.5, 0.7])


def test_report_tables_every_row_and_draws_the_plot(bench, tmp_path):
    diff = {"mean_difference": -0.02, "ci_low": -0.04, "ci_high": 0.001, "p_a_not_better": 0.9}
    result = {
        "model": "m", "settings": [], "n_test": 500, "n_test_users": 98,
        "rows": [
            {"model": "din", "n_train": None, "valid_auc": 0.78, "test_auc": 0.79},
            {"model": "lens_readout", "n_train": 256, "valid_auc": 0.77, "test_auc": 0.78},
            {"model": "reclora", "n_train": 256, "valid_auc": 0.7, "test_auc": 0.72, "minus_din": diff},
            {"model": "reclora", "n_train": 1024, "valid_auc": 0.75, "test_auc": 0.77, "minus_din": diff},
        ],
    }  # fmt: skip
    path = tmp_path / "run.json"
    path.write_text(json.dumps(result))

    table = bench.report([path], tmp_path / "plot.png")

    lines = table.splitlines()
    assert len(lines) == 2 + 4
    assert "| defaults | reclora | 1024 | 0.7500 | 0.7700 | -0.0200 [-0.0400, +0.0010] |" in lines
    assert "| defaults | din | all |" in table
    assert (tmp_path / "plot.png").stat().st_size > 1000
