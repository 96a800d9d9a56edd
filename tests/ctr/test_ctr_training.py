"""train_ctr, score and evaluate on a synthetic history-dependent rule."""

import numpy as np
import pytest
import torch

from reclora_pipeline.ctr.features import CTRVocab, build_features
from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.ctr.registry import build_ctr_model
from reclora_pipeline.ctr.training import (
    INFERENCE_BATCH_SIZE,
    TrainConfig,
    capped_rows,
    evaluate,
    score,
    train_ctr,
    user_representations,
)
from reclora_pipeline.errors import ParameterError, UserInputError
from tests.ctr.synthetic import items_table, rule_samples, users_table

# Small towers keep the suite fast; the rule needs the history, not capacity.
SMALL = {"embed_dim": 16, "hidden_dim": 32}


@pytest.fixture(scope="module")
def data():
    vocab = CTRVocab.fit(items_table(), users_table())
    train, valid, test = (
        build_features(rule_samples(n, seed=s), vocab) for n, s in ((3000, 0), (500, 1), (1000, 2))
    )
    return vocab, train, valid, test


def test_din_learns_a_history_dependent_rule(data):
    vocab, train, valid, test = data
    model = build_ctr_model("din", vocab, seed=0, **SMALL)
    config = TrainConfig(lr=1e-2, batch_size=128, max_epochs=8, patience=3, progress=False)
    result = train_ctr(model, train, valid, config)
    metrics = evaluate(model, test)
    assert metrics["auc"] > 0.9, result.history
    assert result.best_valid_auc == max(h["valid_auc"] for h in result.history)
    # The model ends holding the best epoch's weights.
    assert auc(valid.label.numpy(), score(model, valid)) == pytest.approx(result.best_valid_auc)


def test_training_is_deterministic_for_a_seed(data):
    vocab, train, valid, _ = data
    config = TrainConfig(batch_size=200, max_epochs=2, patience=5, seed=7, progress=False)

    def run(seed: int):
        model = build_ctr_model("din", vocab, seed=seed, **SMALL)
        result = train_ctr(model, _head(train, 600), valid, config)
        return result, score(model, valid)

    (r1, p1), (r2, p2) = run(0), run(0)
    assert [h["valid_auc"] for h in r1.history] == [h["valid_auc"] for h in r2.history]
    np.testing.assert_array_equal(p1, p2)
    _, p3 = run(1)
    assert not np.array_equal(p1, p3)


@pytest.mark.parametrize("name", ["din", "sim", "deepfm"])
def test_scores_do_not_depend_on_the_inference_batch_size(data, name):
    """Scoring runs in ``INFERENCE_BATCH_SIZE`` rows for speed. A row's result does not depend
    on the rows beside it; only float rounding may differ (BLAS picks other kernels for
    small batches)."""
    vocab, _, valid, _ = data
    model = build_ctr_model(name, vocab, seed=0, **SMALL)
    reference = score(model, valid, batch_size=len(valid))
    for batch_size in (7, INFERENCE_BATCH_SIZE):
        probs = score(model, valid, batch_size=batch_size)
        np.testing.assert_allclose(probs, reference, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        user_representations(model, valid, batch_size=7),
        user_representations(model, valid, batch_size=len(valid)),
        rtol=0,
        atol=1e-5,
    )


class _Frozen(torch.nn.Module):
    """Scores by item id only; its one parameter has no effect, so valid AUC never improves."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def forward(self, batch):
        return batch["item"].float() / 10 + 0 * self.unused


def test_early_stopping_stops_after_patience_epochs_without_gain(data):
    _, train, valid, _ = data
    config = TrainConfig(batch_size=1000, max_epochs=10, patience=2, progress=False)
    result = train_ctr(_Frozen(), _head(train, 1000), valid, config)
    assert result.best_epoch == 1
    assert result.epochs == 1 + config.patience + 1
    assert [h["epoch"] for h in result.history] == [1.0, 2.0, 3.0, 4.0]


def test_sim_trains_on_the_same_interface(data):
    vocab, train, valid, _ = data
    model = build_ctr_model("sim", vocab, seed=0, top_k=5, **SMALL)
    config = TrainConfig(lr=3e-3, batch_size=250, max_epochs=1, progress=False)
    result = train_ctr(model, _head(train, 1000), valid, config)
    assert result.epochs == 1 and 0.0 <= result.best_valid_auc <= 1.0
    probs = score(model, valid)
    assert probs.shape == (len(valid),) and ((probs > 0) & (probs < 1)).all()


def test_bad_config_and_unlabelled_splits_are_rejected(data):
    vocab, train, valid, _ = data
    with pytest.raises(ParameterError, match="batch_size"):
        TrainConfig(batch_size=0)
    unlabelled = _head(valid, 50)
    unlabelled.label = torch.full_like(unlabelled.label, float("nan"))
    with pytest.raises(UserInputError, match="valid"):
        train_ctr(build_ctr_model("din", vocab, **SMALL), _head(train, 50), unlabelled)


def _head(features, n):
    return features.select(slice(0, n))


def test_max_steps_per_epoch_caps_the_optimizer_steps(data):
    """The benchmark knob stops each epoch after the given number of batches."""
    vocab, train, valid, _ = data
    model = build_ctr_model("din", vocab, seed=0, **SMALL)
    config = TrainConfig(batch_size=50, max_epochs=1, max_steps_per_epoch=2, progress=False)
    training_passes = []
    model.register_forward_hook(lambda module, args, out: training_passes.append(module.training))
    train_ctr(model, train, valid, config)
    assert sum(training_passes) == 2  # scoring the valid split runs in eval mode
    with pytest.raises(ParameterError, match="max_steps_per_epoch"):
        TrainConfig(max_steps_per_epoch=0)


def test_capped_rows_is_a_seeded_ordered_subset(data):
    """The max_eval_rows knob keeps a fixed random subset, in the original order."""
    _, _, valid, _ = data
    assert capped_rows(valid, None, seed=0) is valid
    assert capped_rows(valid, len(valid), seed=0) is valid
    picked = capped_rows(valid, 100, seed=3)
    assert len(picked) == 100
    positions = torch.searchsorted(valid.sample_id, picked.sample_id)
    assert torch.equal(valid.sample_id[positions], picked.sample_id)  # rows of valid
    assert bool((positions.diff() > 0).all())  # distinct and in order
    assert torch.equal(picked.label, valid.label[positions])
    assert torch.equal(capped_rows(valid, 100, seed=3).sample_id, picked.sample_id)
    assert not torch.equal(capped_rows(valid, 100, seed=4).sample_id, picked.sample_id)
    with pytest.raises(ParameterError, match="max_eval_rows"):
        TrainConfig(max_eval_rows=0)
