"""Data-parallel training: shards of the epoch, gathered scores, and 2 processes == 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from reclora_pipeline.finetune.data_parallel import (
    even_batches,
    gather_scores,
    mean_over_ranks,
    micro_batch_seed,
    rank_batches,
    rank_rows,
)
from reclora_pipeline.finetune.launch import deepspeed_command
from reclora_pipeline.finetune.parallel_check import (
    adapter_weights,
    compare_world_sizes,
    max_difference,
    shards_disjoint,
)
from reclora_pipeline.finetune.request import FinetuneRequest
from reclora_pipeline.finetune.run import run_request
from reclora_pipeline.finetune.settings import FinetuneSettings
from reclora_pipeline.personalized_lora import PersonalizedLoraConfig
from tests.tiny_models import save_tiny_llama

DEEPSPEED_CONFIGS = Path(__file__).resolve().parents[2] / "conf" / "base" / "deepspeed"


def _batches(sizes: list[int]) -> list[np.ndarray]:
    starts = np.cumsum([0, *sizes])
    return [np.arange(a, b) for a, b in zip(starts[:-1], starts[1:], strict=True)]


@pytest.mark.parametrize("sizes", [[4, 4, 4], [4, 4, 4, 1], [3], [2, 2, 2, 2, 2]])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_take_disjoint_shares_that_cover_the_epoch(sizes, world_size):
    batches = _batches(sizes)
    shares = [rank_batches(batches, rank, world_size) for rank in range(world_size)]
    rows = np.concatenate([b for share in shares for b in share])
    assert sorted(rows.tolist()) == list(range(sum(sizes)))  # disjoint and covering
    assert len({len(share) for share in shares}) == 1  # every rank takes as many steps


def test_evening_splits_the_last_splittable_batches_and_keeps_the_order():
    batches = _batches([4, 4, 1])
    evened = even_batches(batches, 2)
    assert [b.tolist() for b in evened] == [[0, 1, 2, 3], [4, 5], [6, 7], [8]]
    assert even_batches(batches, 3) == batches or len(even_batches(batches, 3)) == 3


def test_too_few_rows_for_the_processes_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot be split over 3 processes"):
        even_batches(_batches([1, 1]), 3)
    with pytest.raises(ValueError, match="outside world size"):
        rank_batches(_batches([2]), 2, 2)


def test_scoring_shares_mix_long_and_short_rows():
    lengths = np.array([5, 50, 10, 40, 20, 30])
    first, second = rank_rows(lengths, 0, 2), rank_rows(lengths, 1, 2)
    assert sorted([*first, *second]) == list(range(6))
    assert abs(lengths[first].sum() - lengths[second].sum()) <= 30


def test_without_a_process_group_everything_is_the_single_process_identity():
    lengths = np.array([3, 1, 2])
    scores = gather_scores(lambda rows: rows * 0.1, lengths)
    np.testing.assert_allclose(scores, [0.0, 0.1, 0.2])
    assert mean_over_ranks(0.25) == 0.25


def test_micro_batch_seeds_depend_on_seed_epoch_and_index_only():
    assert micro_batch_seed(0, 1, 2) == micro_batch_seed(0, 1, 2)
    seeds = {micro_batch_seed(s, e, i) for s in (0, 1) for e in (0, 1) for i in range(4)}
    assert len(seeds) == 16


def test_shards_that_share_a_row_are_not_disjoint():
    assert shards_disjoint([{"0": [1, 2]}, {"0": [3, 4]}])
    assert not shards_disjoint([{"0": [1, 2]}, {"0": [2, 4]}])


WORDS = ["Yes", "No", ".", "Answer", ":"]


def _rows(n_train: int, n_valid: int, dim: int = 6, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = n_train + n_valid
    labels = rng.integers(0, 2, n)
    words = ["the user liked movie", "a male user watched movies", "female user is movie"]
    prompts = [f"{words[i % 3]} {'stars ' * int(rng.integers(1, 8))}Answer :" for i in range(n)]
    return pa.table(
        {
            "sample_id": np.arange(n, dtype=np.int64) * 3 + 7,
            "subset": ["train"] * n_train + ["valid"] * n_valid,
            "user_id": rng.integers(0, 5, n),
            "prompt": prompts,
            "recency_prompt": prompts,
            "answer": ["Yes ." if y else "No ." for y in labels],
            "label": labels,
            "user_repr": [list(v) for v in rng.normal(size=(n, dim)).astype(np.float32)],
        }
    )


def _request(model: Path, zero: str, accumulation: int = 2) -> FinetuneRequest:
    training = FinetuneSettings(
        lr=5e-3, epochs=2, micro_batch_size=2, gradient_accumulation_steps=accumulation,
        length_window=2, patience=2, engine="deepspeed", max_length=64, eval_batch_size=4,
        bf16=False, deepspeed_config=str(DEEPSPEED_CONFIGS / f"{zero}.json"),
    )  # fmt: skip
    lora = PersonalizedLoraConfig(
        n_experts=2, r=2, alpha=4.0, dropout=0.1, target_modules=("q_proj", "v_proj"),
        gate_hidden=8, gate_dropout=0.1, user_dim=6,
    )  # fmt: skip
    return FinetuneRequest(arm="reclora", model=str(model), n_users=5, training=training,
                           lora=lora)  # fmt: skip


def test_zero3_accumulates_gradients_as_zero2(tmp_path):
    """One process, 4 micro-batches per step. ZeRO-3 counts micro-steps in the engine's
    forward; a forward past the engine (on its .module) made it keep only the last
    micro-batch's gradient of every step."""
    model = save_tiny_llama(tmp_path / "model", WORDS)
    rows, reports, weights = _rows(16, 8), {}, {}
    for zero in ("zero2", "zero3"):
        reports[zero] = run_request(_request(model, zero, 4), rows, tmp_path / zero,
                                    progress=False)  # fmt: skip
        weights[zero] = adapter_weights(tmp_path / zero)
    losses = [[h["train_loss"] for h in reports[zero]["history"]] for zero in reports]
    assert max_difference(*losses) < 1e-5
    assert max(float((weights["zero2"][k] - weights["zero3"][k]).abs().max())
               for k in weights["zero2"]) < 1e-5  # fmt: skip


@pytest.mark.skipif(deepspeed_command() is None, reason="needs the deepspeed launcher")
@pytest.mark.parametrize("zero", ["zero2", "zero3"])
def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path, zero):
    """Through the deepspeed launcher (gloo on CPU), the path the GPUs take. Under ZeRO-3
    the adapters are partitioned across the two processes when the best one is saved."""
    model = save_tiny_llama(tmp_path / "model", WORDS)
    # 16 train rows: 8 micro-batches of 2, 4 per process (an uneven count would be evened
    # by splitting a batch, which the one-process run does not do: tested above).
    result = compare_world_sizes(_request(model, zero), _rows(16, 8), tmp_path / "check",
                                 world_size=2)  # fmt: skip
    assert result["shards_disjoint"] and result["shards_cover"]
    assert result["optimizer_steps"][0] == result["optimizer_steps"][1] == 4
    assert result["max_loss_diff"] < 1e-5
    assert result["max_weight_diff"] < 1e-5
    assert result["max_score_diff"] < 1e-5
