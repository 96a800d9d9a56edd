"""8-bit base weights (finetune.training.model_dtype: int8): train, save, score as trained."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from reclora_pipeline import compute
from reclora_pipeline.compute import model_dtype
from reclora_pipeline.errors import SettingError
from reclora_pipeline.finetune.request import FinetuneRequest
from reclora_pipeline.finetune.run import run_request
from reclora_pipeline.finetune.scoring_job import (
    AdapterBaseModelError,
    ScoringJob,
    ScoringRows,
    score_job,
)
from reclora_pipeline.finetune.settings import FinetuneSettings, LaunchSettings
from reclora_pipeline.personalized_lora import PersonalizedLoraConfig
from tests.finetune.test_data_parallel import WORDS, _rows
from tests.tiny_models import save_tiny_llama


def test_int8_without_bitsandbytes_names_the_setting(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        compute.importlib.util, "find_spec",
        lambda name, *a: None if name == "bitsandbytes" else real_find_spec(name, *a),
    )  # fmt: skip
    with pytest.raises(SettingError, match=r"model_dtype.*pip install bitsandbytes"):
        FinetuneSettings(model_dtype="int8")


def test_int8_keeps_the_unquantized_parts_in_a_float_dtype():
    assert model_dtype("int8", False, "cpu", "k") == torch.float32


@pytest.mark.parametrize("engine", ["torch", "deepspeed"])
def test_an_arm_trained_on_8_bit_weights_is_scored_on_8_bit_weights(tmp_path, engine):
    model = save_tiny_llama(tmp_path / "model", WORDS)
    training = FinetuneSettings(
        lr=5e-3, epochs=1, micro_batch_size=4, gradient_accumulation_steps=1, engine=engine,
        max_length=64, eval_batch_size=4, bf16=False, model_dtype="int8",
    )  # fmt: skip
    lora = PersonalizedLoraConfig(n_experts=2, r=2, gate_hidden=4, user_dim=6,
                                  target_modules=("q_proj", "v_proj"))  # fmt: skip
    request = FinetuneRequest(arm="reclora", model=str(model), n_users=5, training=training,
                              lora=lora)  # fmt: skip
    rows = _rows(8, 8)
    report = run_request(request, rows, tmp_path / "adapter", progress=False)
    assert report["weights"] == "int8" and report["optimizer_steps"] == 2
    valid = rows.filter(rows.column("subset").to_numpy() == "valid")
    scoring_rows = ScoringRows.from_table(valid)  # prompt, user_repr, user_id
    job = ScoringJob(model=str(model), max_length=64, batch_size=4, bf16=False, bf16_key="k",
                     adapter=str(tmp_path / "adapter"), arm="reclora", int8=True)  # fmt: skip
    scores = score_job(job, scoring_rows, LaunchSettings())
    assert scores.shape == (8,) and np.isfinite(scores).all()
    # The adapter's signature says it was trained on 8-bit weights: a float base is refused.
    float_job = ScoringJob(**{**job.__dict__, "int8": False})
    with pytest.raises(AdapterBaseModelError, match="weight_format 'int8' vs 'float'"):
        score_job(float_job, scoring_rows, LaunchSettings())
