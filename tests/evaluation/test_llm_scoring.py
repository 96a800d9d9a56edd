"""What the evaluation reads from a finetune report, and scoring the base model."""

from __future__ import annotations

import pytest

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.evaluation.llm_scoring import BaseModel, score_base_model
from reclora_pipeline.evaluation.rows import PREDICTION_SCHEMA
from reclora_pipeline.evaluation.settings import EvaluationSettings
from tests.evaluation.samples import few2many_samples
from tests.tiny_models import save_tiny_llama


def test_base_model_comes_from_the_finetune_report():
    report = {"arm": "reclora", "trained": True, "model": "some/model", "max_length": 64}
    assert BaseModel.of(report, "reclora") == BaseModel("some/model", 64)


def test_a_report_without_the_facts_asks_for_a_new_finetune_run():
    with pytest.raises(UserInputError, match="finetune_report_reclora has no max_length"):
        BaseModel.of({"model": "some/model"}, "reclora")
    with pytest.raises(UserInputError, match="model or max_length.*rerun the finetune"):
        BaseModel.of({"arm": "reclora_no_lens", "trained": False}, "reclora_no_lens")


def test_base_model_scores_every_test_row(tmp_path):
    folder = save_tiny_llama(tmp_path / "tiny", extra_words=["Yes", "No", "retrieved"])
    settings = EvaluationSettings(batch_size=2, bf16=False)
    table = score_base_model(few2many_samples(), BaseModel(str(folder), 32), settings)
    assert table.schema == PREDICTION_SCHEMA
    assert table.column("sample_id").to_pylist() == [10, 20, 30]
    probs = table.column("probability").to_pylist()
    assert all(0.0 < p < 1.0 for p in probs)
