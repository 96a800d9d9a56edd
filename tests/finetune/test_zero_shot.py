"""The shared zero-shot valid pass equals each untrained arm's own valid score."""

from __future__ import annotations

import pyarrow as pa
import pytest

from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.finetune.arms import build_arm
from reclora_pipeline.finetune.run import score, subset
from reclora_pipeline.finetune.settings import FinetuneSettings
from reclora_pipeline.finetune.zero_shot import zero_shot_auc, zero_shot_valid
from reclora_pipeline.item_text.language_model import load_causal_lm
from reclora_pipeline.personalized_lora import PersonalizedLoraConfig
from tests.tiny_models import save_tiny_llama

WORDS = ["the", "user", "liked", "movie", "a", "stars", "male", "female", "watched"]


def _rows(n: int = 12) -> pa.Table:
    return pa.table({
        "sample_id": pa.array(range(n), pa.int64()),
        "subset": ["valid" if i % 3 else "train" for i in range(n)],
        "label": pa.array([i % 2 for i in range(n)], pa.int64()),
        "prompt": [" ".join(WORDS[: 2 + i % 7]) for i in range(n)],
        "recency_prompt": [" ".join(WORDS[i % 5 :]) for i in range(n)],
        "answer": ["Yes." if i % 2 else "No." for i in range(n)],
        "user_repr": [[float(i), 1.0, -1.0] for i in range(n)],
        "user_id": pa.array([1 + i % 4 for i in range(n)], pa.int64()),
    })  # fmt: skip


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return str(save_tiny_llama(tmp_path_factory.mktemp("tiny"), ["Yes", "No", "."]))


def test_one_pass_per_prompt_column_matches_each_untrained_arm(model_folder):
    rows, settings = _rows(), FinetuneSettings(bf16=False, eval_batch_size=4, max_length=64)
    arms = ["reclora", "vanilla_lora", "reclora_no_retriever"]
    report = zero_shot_valid(rows, model_folder, arms, settings)
    assert set(report["valid_auc"]) == {"prompt", "recency_prompt"}
    assert report["n_valid"] == 8 and report["compute"]["precision"] == "fp32"
    lora = PersonalizedLoraConfig(n_experts=2, r=2, gate_hidden=4, user_dim=3)
    for arm in arms:
        base, tokenizer = load_causal_lm(model_folder)
        valid = subset(rows, "valid", arm)
        untrained = build_arm(arm, base, lora, n_users=4)
        own = auc(valid.labels, score(untrained, tokenizer, valid, 4, False, 64))
        assert zero_shot_auc(report, arm) == pytest.approx(own, abs=1e-9)


def test_an_arm_whose_prompts_were_not_scored_has_no_zero_shot_auc():
    assert zero_shot_auc({"valid_auc": {"prompt": 0.6}}, "reclora_no_retriever") is None
