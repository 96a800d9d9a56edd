"""Popularity and logistic-regression baselines."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from reclora_pipeline.ctr.baselines import LogisticRegressionCTR, popularity_scores
from reclora_pipeline.ctr.features import CTRVocab, build_features
from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.ctr.training import TrainConfig, score, train_ctr
from tests.ctr.synthetic import items_table, rule_samples, users_table


def _item_rule_features(vocab: CTRVocab, seed: int):
    """Label depends only on the target item (ids above 20 are liked 90% of the time)."""
    table = rule_samples(600, seed=seed)
    rng = np.random.default_rng(seed)
    liked = table.column("item_id").to_numpy() > 20
    label = np.where(rng.random(len(liked)) < 0.9, liked, ~liked).astype(np.int8)
    table = table.set_column(table.column_names.index("label"), "label", pa.array(label))
    return build_features(table, vocab)


def test_popularity_ranks_items_by_their_train_positive_rate():
    vocab = CTRVocab.fit(items_table(), users_table())
    train, test = _item_rule_features(vocab, 0), _item_rule_features(vocab, 1)
    scores = popularity_scores(train, test)
    assert scores.shape == (len(test),)
    assert auc(test.label.numpy(), scores) > 0.85


def test_logistic_regression_learns_an_item_rule_but_not_a_history_rule():
    vocab = CTRVocab.fit(items_table(), users_table())
    model = LogisticRegressionCTR(vocab)
    train_ctr(
        model,
        _item_rule_features(vocab, 0),
        _item_rule_features(vocab, 2),
        TrainConfig(lr=0.05, max_epochs=20, batch_size=64, progress=False),
    )
    test = _item_rule_features(vocab, 1)
    assert auc(test.label.numpy(), score(model, test)) > 0.85
    # The synthetic history rule needs an interaction between target and history: a linear
    # model cannot express it (this is what the sequence models add).
    rule_train, rule_test = (
        build_features(rule_samples(600, seed=3), vocab),
        build_features(rule_samples(400, seed=4), vocab),
    )
    linear = LogisticRegressionCTR(vocab)
    train_ctr(
        linear,
        rule_train,
        rule_test,
        TrainConfig(lr=0.05, max_epochs=5, batch_size=64, progress=False),
    )
    assert auc(rule_test.label.numpy(), score(linear, rule_test)) < 0.65
