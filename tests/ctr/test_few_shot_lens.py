"""The lens CRM retrained on the LLM's few rows (the reclora_no_few2many ablation)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from reclora_pipeline.ctr.features import CTRVocab, build_features
from reclora_pipeline.ctr.few_shot_lens import (
    FewShotLensTraining,
    lens_recipe,
    settings_from_recipe,
    train_few_shot_lens,
)
from reclora_pipeline.ctr.lens import new_crm
from reclora_pipeline.ctr.lens_tables import rows_of
from reclora_pipeline.ctr.long_history import HistoryView
from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.ctr.training import score
from reclora_pipeline.errors import SettingError, UserInputError
from reclora_pipeline.typed_settings import parse
from tests.ctr.synthetic import items_table, rule_samples, users_table

N = 600
SMALL = {"embed_dim": 8, "hidden_dim": 16, "n_layers": 2}
TRAINING = FewShotLensTraining(batch_size=16, max_epochs=8, patience=2)


@pytest.fixture
def settings() -> CtrLensSettings:
    return parse(
        CtrLensSettings,
        {"max_history": 10, "training": {"max_epochs": 1, "lr": 0.01, "progress": False},
         "models": {"din": {"options": SMALL}}},
        "ctr_lens",
    )  # fmt: skip


@pytest.fixture
def vocab() -> CTRVocab:
    return CTRVocab.fit(items_table(), users_table())


@pytest.fixture
def features(vocab):
    return build_features(rule_samples(N, hist_len=8), vocab, HistoryView(max_history=10))


def subsets() -> dict[str, np.ndarray]:
    """Out of id order, as few2many stores them."""
    ids = np.random.default_rng(1).permutation(N)
    return {"train": ids[:400], "valid": ids[400:500], "test": ids[500:560]}


def test_recipe_rebuilds_the_lens_settings(settings):
    assert settings_from_recipe(lens_recipe(settings)) == settings
    with pytest.raises(SettingError, match="lens_recipe"):
        settings_from_recipe({**lens_recipe(settings), "crm": "gru4rec"})


def test_rows_of_keeps_the_asked_order_and_names_missing_samples(features):
    ids = np.array([7, 3, 250])
    assert rows_of(features, ids, "valid").sample_id.tolist() == [7, 3, 250]
    with pytest.raises(UserInputError, match=r"1 valid samples are not in ctr_features.*\[999\]"):
        rows_of(features, np.array([3, 999]), "valid")


def test_lens_learns_from_the_few_rows_and_describes_every_row(features, vocab, settings):
    table, report = train_few_shot_lens(features, vocab, settings, subsets(), TRAINING)

    wanted = np.concatenate(list(subsets().values()))
    assert sorted(table.column("sample_id").to_pylist()) == sorted(wanted.tolist())
    assert table.column("user_repr").type == pa.list_(pa.float32(), SMALL["hidden_dim"])
    assert report["rows"] == {"train": 400, "valid": 100, "test": 60}
    assert report["crm"] == "din" and 1 <= report["epochs"] <= TRAINING.max_epochs
    # It learned from its rows: it fits them better than the same CRM untrained does.
    train = rows_of(features, subsets()["train"], "train")
    untrained = auc(train.label.numpy(), score(new_crm("din", vocab, settings), train))
    assert report["auc"]["train"] > untrained + 0.05
    again, same = train_few_shot_lens(features, vocab, settings, subsets(), TRAINING)
    assert same == report and again.equals(table)


def test_a_single_class_subset_is_a_clear_error(features, vocab, settings):
    labels = features.label.numpy()
    clicks = np.flatnonzero(labels == 1)
    chosen = {**subsets(), "valid": clicks[:10]}
    chosen["train"] = np.setdiff1d(chosen["train"], chosen["valid"])
    with pytest.raises(UserInputError, match=r"valid rows \(10\) hold a single class.*n_valid"):
        train_few_shot_lens(features, vocab, settings, chosen, TRAINING)


def test_training_settings_are_checked():
    with pytest.raises(SettingError, match="batch_size"):
        dataclasses.replace(TRAINING, batch_size=0)
