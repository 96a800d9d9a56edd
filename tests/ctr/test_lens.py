"""The lens stage's library: features read from DuckDB, seeded training, the output tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from reclora_pipeline import duckdb_store
from reclora_pipeline.ctr.features import CTRVocab
from reclora_pipeline.ctr.lens import load_crms, new_crm, train_and_test
from reclora_pipeline.ctr.lens_tables import lens_outputs, lens_scorer, predictions_table, rows_of
from reclora_pipeline.ctr.sample_features import of_split, sample_features
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.ctr.training import score, user_representations
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.typed_settings import parse
from tests.ctr.synthetic import items_table, rule_samples, users_table

SMALL = {"embed_dim": 8, "hidden_dim": 16, "n_layers": 2}
N = 240


@pytest.fixture
def settings() -> CtrLensSettings:
    return parse(
        CtrLensSettings,
        {
            "max_history": 10,
            "max_long_history": 4,
            "training": {"max_epochs": 2, "batch_size": 64, "progress": False},
            "models": {name: {"options": SMALL} for name in ("din", "sim", "deepfm")},
        },
        "ctr_lens",
    )


@pytest.fixture
def tables(database) -> tuple[DuckDBTable, DuckDBTable]:
    """``samples`` stored in a shuffled row order, ``retrieved_histories`` for half of them."""
    samples = rule_samples(N, hist_len=8)
    splits = np.array(["train", "valid", "test"])[np.arange(N) % 3]
    samples = samples.append_column("split", pa.array(splits))
    samples = samples.take(np.random.default_rng(0).permutation(N))
    long = samples.select(["sample_id", "history_item_ids", "history_ratings"]).slice(0, N // 2)
    long = long.rename_columns(["sample_id", "crm_history_item_ids", "crm_history_ratings"])
    connection = duckdb_store.connect(database)
    duckdb_store.replace_table(connection, "samples", samples)
    duckdb_store.replace_table(connection, "retrieved_histories", long)
    return DuckDBTable(connection, "samples"), DuckDBTable(connection, "retrieved_histories")


@pytest.fixture
def vocab() -> CTRVocab:
    return CTRVocab.fit(items_table(), users_table())


def test_features_are_in_sample_id_order_and_know_their_split(tables, vocab, settings):
    features = sample_features(*tables, vocab, settings)

    np.testing.assert_array_equal(features.sample_id.numpy(), np.arange(N))
    np.testing.assert_array_equal(features.extra["split"].numpy(), np.arange(N) % 3)
    assert features.hist.shape[1] == 10 and features.long_hist.shape[1] == 4
    test = of_split(features, "test")
    np.testing.assert_array_equal(test.sample_id.numpy(), np.arange(2, N, 3))
    # Samples without a retrieved history get an empty long history.
    assert features.long_hist_mask.any(dim=1).sum() == N // 2


def test_training_is_seeded_and_the_checkpoint_reloads(tables, vocab, settings):
    features = sample_features(*tables, vocab, settings)

    state, metrics = train_and_test("din", vocab, features, settings)
    again, same = train_and_test("din", vocab, features, settings)

    assert metrics == same
    assert metrics["n_test"] == N // 3 and 1 <= metrics["epochs"] <= 2
    assert all(torch.equal(state[key], again[key]) for key in state)
    test = of_split(features, "test")
    reloaded = predictions_table(load_crms({"din": state}, vocab, settings), test)
    untrained = predictions_table({"din": new_crm("din", vocab, settings)}, test)
    assert not np.array_equal(reloaded.column("din"), untrained.column("din"))


def test_lens_outputs_cover_the_selected_rows_only(tables, vocab, settings):
    features = sample_features(*tables, vocab, settings)
    models = {name: new_crm(name, vocab, settings) for name in ("sim", "din", "deepfm")}
    ids = features.sample_id.numpy()
    picked = np.array([ids[5], ids[0], ids[17]])

    user_repr, predictions = lens_outputs(models, "sim", features, picked)

    assert predictions.column_names == ["sample_id", "deepfm", "din", "sim"]
    assert predictions.column("sample_id").to_pylist() == picked.tolist()
    assert user_repr.column_names == ["sample_id", "user_repr", "crm_probability"]
    assert user_repr.schema.field("crm_probability").type == pa.float64()
    assert user_repr.column("user_repr").type == pa.list_(pa.float32(), SMALL["hidden_dim"])
    assert user_repr.column("sample_id").to_pylist() == picked.tolist()
    # The lens's probability travels with its vectors.
    assert user_repr.column("crm_probability").equals(predictions.column("sim"))
    # The same numbers as scoring those rows on their own.
    rows = rows_of(features, picked, "picked")
    np.testing.assert_array_equal(
        np.stack(user_repr.column("user_repr").to_numpy(zero_copy_only=False)),
        user_representations(models["sim"], rows),
    )
    np.testing.assert_allclose(predictions.column("din").to_numpy(), score(models["din"], rows))
    np.testing.assert_allclose(
        lens_scorer(models["din"], features)(picked), predictions.column("din").to_numpy()
    )
    with pytest.raises(UserInputError, match="few2many_selection"):
        lens_outputs(models, "sim", features, np.array([10**9]))
