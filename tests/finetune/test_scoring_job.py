"""Scoring jobs: in this process, and split over 2 launched processes (the same scores)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.finetune.adapters import save_arm
from reclora_pipeline.finetune.arms import build_arm
from reclora_pipeline.finetune.launch import deepspeed_command
from reclora_pipeline.finetune.scoring import score_prompts
from reclora_pipeline.finetune.scoring_job import (
    AdapterBaseModelError,
    ScoringJob,
    ScoringRows,
    score_job,
)
from reclora_pipeline.finetune.settings import LaunchSettings
from reclora_pipeline.item_text.language_model import load_causal_lm
from reclora_pipeline.personalized_lora import PersonalizedLoraConfig
from tests.tiny_models import save_tiny_llama

WORDS = ["Yes", "No", ".", "Answer", ":", "the", "user", "liked", "movie", "stars"]
LORA = PersonalizedLoraConfig(n_experts=2, r=2, gate_hidden=4, user_dim=3,
                              target_modules=("q_proj", "v_proj"))  # fmt: skip


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny base model folder and a RecLoRA adapter trained on nothing but noise."""
    folder = tmp_path_factory.mktemp("scoring_job")
    model = save_tiny_llama(folder / "model", WORDS)
    base, _ = load_causal_lm(str(model))
    torch.manual_seed(0)
    arm = build_arm("reclora", base, LORA, n_users=4)
    with torch.no_grad():  # LoRA up-projections start at zero: make the adapter matter
        for param in arm.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.2)
    save_arm(arm, folder / "adapter")
    return model, folder / "adapter"


def _rows(n: int = 13) -> ScoringRows:
    rng = np.random.default_rng(0)
    prompts = [" ".join(WORDS[5 + i % 5 :] + ["stars"] * int(rng.integers(0, 6)) + ["Answer", ":"])
               for i in range(n)]  # fmt: skip
    user_repr = torch.from_numpy(rng.normal(size=(n, 3)).astype(np.float32))
    return ScoringRows(prompts, user_repr, torch.arange(n, dtype=torch.int64) % 4)


def _job(model, adapter=None, arm=None) -> ScoringJob:
    return ScoringJob(model=str(model), max_length=32, batch_size=4, bf16=False,
                      bf16_key="test.bf16", adapter=adapter and str(adapter), arm=arm)  # fmt: skip


def test_rows_survive_the_trip_through_a_table():
    rows = _rows(5)
    back = ScoringRows.from_table(rows.to_table())
    assert back.prompts == rows.prompts
    torch.testing.assert_close(back.user_repr, rows.user_repr)
    torch.testing.assert_close(back.user_ids, rows.user_ids)
    base_rows = ScoringRows.from_table(ScoringRows(["a"]).to_table())
    assert base_rows.user_repr is None and base_rows.user_ids is None


def test_in_process_scores_are_the_scorer_s_own(saved):
    model, _ = saved
    rows = _rows()
    scores = score_job(_job(model), rows, LaunchSettings())
    base, tokenizer = load_causal_lm(str(model))
    expected = score_prompts(base, tokenizer, rows.prompts, batch_size=4, max_length=32)
    np.testing.assert_array_equal(scores, expected)


def test_a_job_names_both_adapter_and_arm_or_neither(saved):
    model, adapter = saved
    with pytest.raises(ValueError, match="both an adapter and its arm"):
        _job(model, adapter=adapter)


def test_an_adapter_of_another_arm_or_base_model_is_refused(saved, tmp_path):
    model, adapter = saved
    with pytest.raises(UserInputError, match="holds arm 'reclora', not 'vanilla_lora'"):
        score_job(_job(model, adapter, "vanilla_lora"), _rows(), LaunchSettings())
    other = save_tiny_llama(tmp_path / "other", [*WORDS, "extra"])
    with pytest.raises(AdapterBaseModelError, match="was not trained on"):
        score_job(_job(other, adapter, "reclora"), _rows(), LaunchSettings())


@pytest.mark.skipif(deepspeed_command() is None, reason="needs the deepspeed launcher")
def test_two_launched_processes_score_as_one(saved):
    """The rows are split over 2 processes (gloo on CPU, as GPUs would split them) and
    gathered back in row order; batches differ, so scores agree to float rounding."""
    model, adapter = saved
    rows, job = _rows(), _job(model, adapter, "reclora")
    inline = score_job(job, rows, LaunchSettings())
    launched = score_job(job, rows, LaunchSettings(launcher="deepspeed", num_gpus=2))
    assert launched.shape == inline.shape
    np.testing.assert_allclose(launched, inline, atol=1e-6, rtol=0)
    assert not np.allclose(inline, inline.mean())  # the rows do get different scores
    # The same through one launched process: the launcher path alone changes nothing.
    single = score_job(dataclasses.replace(job), rows, LaunchSettings(launcher="deepspeed"))
    np.testing.assert_allclose(single, inline, atol=1e-6, rtol=0)
