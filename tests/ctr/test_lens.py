"""The lens stage's library: features read from DuckDB, seeded training, the output tables."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest
import torch

from reclora_pipeline import duckdb_store
from reclora_pipeline.ctr import sample_features as sample_features_module
from reclora_pipeline.ctr.features import CTRVocab
from reclora_pipeline.ctr.lens import load_crms, new_crm, train_and_test
from reclora_pipeline.ctr.lens_tables import lens_outputs, lens_scorer, predictions_table, rows_of
from reclora_pipeline.ctr.sample_features import sample_features
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.ctr.splits import of_split
from reclora_pipeline.ctr.training import score, user_representations
from reclora_pipeline.duckdb_store import DuckDBTable, fetch_row
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.ingest.samples import build_samples
from reclora_pipeline.typed_settings import parse
from tests.ctr.synthetic import items_table, rule_interactions, users_table

SMALL = {"embed_dim": 8, "hidden_dim": 16, "n_layers": 2}
N = 330  # 30 users x 11 samples (every interaction after the first)


@pytest.fixture
def settings() -> CtrLensSettings:
    return parse(
        CtrLensSettings,
        {
            "max_history": 8,
            "k_crm": 10,
            "lifelong_max_history": 10,
            "training": {"max_epochs": 2, "batch_size": 64, "progress": False},
            "models": {name: {"options": SMALL} for name in ("din", "sim", "deepfm")},
        },
        "ctr_lens",
    )


@pytest.fixture
def tables(database) -> tuple[DuckDBTable, DuckDBTable]:
    """``samples`` built by ingest's own rule from ``interactions``, stored shuffled."""
    connection = duckdb_store.connect(database)
    duckdb_store.replace_table(connection, "interactions", rule_interactions(seed=1))
    interactions = DuckDBTable(connection, "interactions")
    samples = build_samples(interactions, min_history=1, max_history=8).to_arrow_table()
    samples = samples.take(np.random.default_rng(0).permutation(samples.num_rows))
    duckdb_store.replace_table(connection, "samples", samples)
    return DuckDBTable(connection, "samples"), interactions


@pytest.fixture
def vocab() -> CTRVocab:
    return CTRVocab.fit(items_table(), users_table())


def test_features_are_in_sample_id_order_and_know_their_split(tables, vocab):
    features = sample_features(*tables, vocab)

    ids = features.sample_id.numpy()
    assert len(ids) == N and np.all(np.diff(ids) > 0)
    np.testing.assert_array_equal(features.extra["split"].numpy(), ids % 3)
    test = of_split(features, "test")
    np.testing.assert_array_equal(test.sample_id.numpy(), ids[ids % 3 == 2])


def test_features_read_in_small_batches_are_the_same(tables, vocab, settings, monkeypatch):
    """DuckDB results are read batch by batch: users and samples cut at a batch boundary
    (here every 7 rows) keep their histories."""
    whole = sample_features(*tables, vocab).with_view(settings.history_view())
    monkeypatch.setattr(sample_features_module, "BATCH_ROWS", 7)
    batched = sample_features(*tables, vocab).with_view(settings.history_view())

    assert torch.equal(whole.sequences.items, batched.sequences.items)
    assert torch.equal(whole.sequences.ratings, batched.sequences.ratings)
    one, other = whole.batch(slice(None)), batched.batch(slice(None))
    assert one.keys() == other.keys()
    for name, tensor in one.items():
        assert torch.equal(tensor, other[name]), name
    assert torch.equal(whole.extra["split"], batched.extra["split"])


def test_no_samples_give_empty_features(tables, vocab, settings):
    samples, interactions = tables
    samples.connection.execute(f"DELETE FROM {samples.sql_name}")

    features = sample_features(samples, interactions, vocab).with_view(settings.history_view())

    assert len(features) == 0 and features.extra["split"].dtype == torch.int8
    assert features.batch(slice(None))["hist"].shape == (0, settings.max_history)


def test_the_lifelong_store_gives_each_sample_ingests_history(tables, vocab, settings):
    """The recent window gathered from the users' sequences is the history list ingest
    stored with the sample (same items, ratings and order)."""
    samples, interactions = tables
    features = sample_features(samples, interactions, vocab).with_view(settings.history_view())
    batch = features.batch(slice(None))
    stored = samples.connection.sql(
        f"SELECT history_item_ids, history_ratings FROM {samples.sql_name} ORDER BY sample_id"
    ).to_arrow_table()
    for row, (ids, ratings) in enumerate(
        zip(*(stored.column(c).to_pylist() for c in stored.column_names), strict=True)
    ):
        length = int(batch["hist_mask"][row].sum())
        assert batch["hist"][row, :length].tolist() == ids[-8:]
        assert batch["hist_rating"][row, :length].tolist() == [int(r) + 1 for r in ratings[-8:]]
    # The lens reads up to lifelong_max_history = 10 earlier items, more than ingest keeps.
    longest = int(batch["long_hist_mask"].sum(1).max())
    assert batch["long_hist"].shape[1] == 10 and longest == 10


def test_samples_missing_from_the_interactions_are_refused(tables, vocab):
    samples, interactions = tables
    sample_id = fetch_row(samples.connection, f"SELECT max(sample_id) FROM {samples.sql_name}")[0]
    interactions.connection.execute(
        f"DELETE FROM {interactions.sql_name} WHERE interaction_id = {sample_id}"
    )
    with pytest.raises(UserInputError, match=f"no interaction in .*sample_id \\[{sample_id}\\]"):
        sample_features(samples, interactions, vocab)


def test_training_is_seeded_and_the_checkpoint_reloads(tables, vocab, settings):
    features = sample_features(*tables, vocab).with_view(settings.history_view())

    state, metrics = train_and_test("din", vocab, features, settings)
    again, same = train_and_test("din", vocab, features, settings)

    assert metrics == same
    assert metrics["n_test"] == N // 3 and 1 <= metrics["epochs"] <= 2
    assert all(torch.equal(state[key], again[key]) for key in state)
    test = of_split(features, "test")
    reloaded = predictions_table(load_crms({"din": state}, vocab, settings), test)
    untrained = predictions_table({"din": new_crm("din", vocab, settings)}, test)
    assert not np.array_equal(reloaded.column("din"), untrained.column("din"))


def test_max_eval_rows_caps_the_scored_valid_and_test_rows(tables, vocab, settings):
    capped = parse(
        CtrLensSettings,
        {**dataclasses.asdict(settings), "training": {"max_epochs": 1, "batch_size": 64,
                                                       "progress": False, "max_eval_rows": 40}},
        "ctr_lens",
    )  # fmt: skip
    features = sample_features(*tables, vocab).with_view(capped.history_view())

    _, metrics = train_and_test("deepfm", vocab, features, capped)

    assert (metrics["n_valid"], metrics["n_test"]) == (40, 40)


def test_lens_outputs_cover_the_selected_rows_only(tables, vocab, settings):
    features = sample_features(*tables, vocab).with_view(settings.history_view())
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
