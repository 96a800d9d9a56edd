"""k-core, labels, temporal split and histories on hand-made and fixture data."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from reclora_pipeline.duckdb_store import DuckDBTable, connect, replace_table
from reclora_pipeline.ingest.interactions import (
    index_items,
    index_users,
    k_core_filter,
    label_and_split,
)
from reclora_pipeline.ingest.labels import LabelRule, label_rule_for
from reclora_pipeline.ingest.readers import read_dataset
from reclora_pipeline.ingest.samples import build_samples
from tests.sources import WRITERS


def _store(database, name, data) -> DuckDBTable:
    connection = connect(database)
    replace_table(connection, name, data)
    return DuckDBTable(connection, name)


def _interactions(rows):
    users, items, ratings, times = zip(*rows, strict=True)
    return pa.table(
        {
            "user_id": list(users),
            "item_id": list(items),
            "rating": list(ratings),
            "timestamp": list(times),
        }
    )


def test_k_core_is_a_fixpoint_and_cascades(database):
    # Item 9 has 1 rating; removing it drops user 3 below k=2, which drops item 8 below 2.
    rows = [
        (1, 7, 4.0, 1),
        (1, 8, 4.0, 2),
        (2, 7, 4.0, 3),
        (2, 8, 4.0, 4),
        (3, 8, 4.0, 5),
        (3, 9, 4.0, 6),
        (4, 7, 1.0, 7),
    ]
    rows += [(4, 10, 1.0, 8), (5, 10, 1.0, 9), (5, 7, 1.0, 10)]
    raw = _store(database, "raw", _interactions(rows))
    core = _store(database, "core", k_core_filter(raw, 2))
    kept = core.df()
    assert 3 not in set(kept.user_id) and 9 not in set(kept.item_id)
    # Fixpoint: every remaining user and item has >= k interactions, and filtering again changes nothing.
    assert kept.groupby("user_id").size().min() >= 2 and kept.groupby("item_id").size().min() >= 2
    assert _store(database, "again", k_core_filter(core, 2)).count() == core.count()


def test_k_core_that_removes_everything_is_an_error(database):
    raw = _store(database, "raw", _interactions([(1, 1, 4.0, 1), (2, 2, 4.0, 2)]))
    with pytest.raises(ValueError, match="lower ingest.k_core"):
        k_core_filter(raw, 5)


@pytest.mark.parametrize(
    ("data_format", "rating", "label"),
    [
        ("ml-1m", 4.0, 1),
        ("ml-1m", 3.5, 0),
        ("goodreads", 4.0, 1),
        ("ml-latest", 3.5, 1),
        ("ml-latest", 3.0, 0),
    ],
)
def test_labels_follow_the_dataset_rule(data_format, rating, label):
    rule = label_rule_for(data_format)
    assert duckdb.sql(f"SELECT {rule.sql(repr(rating))}::INTEGER").fetchall()[0][0] == label


def test_label_rule_override_and_bad_rule():
    assert label_rule_for("ml-1m", "> 4.5") == LabelRule(">", 4.5)
    with pytest.raises(ValueError, match="label_rule"):
        LabelRule.parse("at least 4")


@pytest.fixture
def cleaned(database, tmp_path, world):
    tables = read_dataset("ml-latest", WRITERS["ml-latest"](tmp_path / "src", world))
    raw = _store(database, "raw_interactions", tables.interactions)
    raw_items = _store(database, "raw_items", tables.items)
    raw_users = _store(database, "raw_users", tables.users)
    core = _store(database, "interactions_core", k_core_filter(raw, 2))
    items = _store(database, "items", index_items(core, raw_items))
    users = _store(database, "users", index_users(core, raw_users))
    interactions = _store(
        database, "interactions", label_and_split(core, items, users, label_rule_for("ml-latest"))
    )
    return interactions


def test_split_is_temporal_and_roughly_8_1_1(cleaned):
    frame = cleaned.df()
    bounds = frame.groupby("split").timestamp.agg(["min", "max"])
    assert bounds.loc["train", "max"] < bounds.loc["valid", "min"]
    assert bounds.loc["valid", "max"] < bounds.loc["test", "min"]
    shares = frame.split.value_counts(normalize=True)
    assert 0.7 <= shares["train"] <= 0.9 and shares["valid"] > 0 and shares["test"] > 0


def test_labels_in_the_table(cleaned):
    frame = cleaned.df()
    assert ((frame.rating > 3.0).astype(int) == frame.label).all()


def test_dense_ids_start_at_one(cleaned, database):
    frame = cleaned.df()
    assert frame.user_id.min() == 1 and frame.item_id.min() == 1
    items = DuckDBTable(connect(database), "items").df()
    assert sorted(items.item_id) == list(range(1, len(items) + 1))


def test_histories_hold_only_earlier_interactions_newest_last(cleaned, database):
    samples = _store(database, "samples", build_samples(cleaned, min_history=3, max_history=4)).df()
    events = cleaned.df().sort_values(["user_id", "timestamp", "item_id"])
    assert len(samples) > 0
    for sample in samples.itertuples():
        earlier = events[(events.user_id == sample.user_id)]
        position = earlier.reset_index(drop=True).index[
            earlier.item_id.to_numpy() == sample.item_id
        ][0]
        before = earlier.iloc[:position]
        assert len(before) >= 3
        assert list(sample.history_item_ids) == list(before.item_id.iloc[-4:])
        assert list(sample.history_ratings) == list(before.rating.iloc[-4:])
        assert sample.item_id not in list(sample.history_item_ids)
        assert sample.history_length == min(4, len(before))
        assert before.timestamp.max() <= sample.timestamp


def test_timestamp_ties_are_ordered_by_item_id(database):
    rows = [(1, item, 4.0, t) for item, t in [(5, 1), (4, 2), (9, 3), (2, 3), (7, 3), (3, 4)]]
    interactions = _store(
        database, "interactions",
        pa.table({"interaction_id": list(range(6)), **_interactions(rows).to_pydict(), "label": [1] * 6, "split": ["train"] * 6}),
    )  # fmt: skip
    samples = build_samples(interactions, min_history=5, max_history=60).df()
    assert list(samples.history_item_ids[0]) == [5, 4, 2, 7, 9]
    assert samples.item_id[0] == 3
