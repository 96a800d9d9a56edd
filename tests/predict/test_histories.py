"""Histories as of a timestamp follow the samples' rule exactly, ties included."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from reclora_pipeline.duckdb_store import DuckDBTable, connect, replace_table
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.ingest.samples import build_samples
from reclora_pipeline.predict.histories import HistoryRule, histories_as_of

MAX_HISTORY = 3


@pytest.fixture
def interactions(database) -> DuckDBTable:
    """Two users; user 1 rates items 5, 2 and 9 in the same second."""
    rows = [(1, 7, 100), (1, 5, 200), (1, 2, 200), (1, 9, 200), (1, 3, 300), (1, 4, 400),
            (2, 1, 50), (2, 2, 60)]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).assign(
        interaction_id=range(len(rows)), rating=[1.0, 2.0, 3.0, 4.0, 5.0, 1.5, 2.5, 3.5],
        label=0, split="train",
    )  # fmt: skip
    connection = connect(database)
    replace_table(
        connection, "interactions", frame.astype({"user_id": "int32", "item_id": "int32"})
    )
    return DuckDBTable(connection, "interactions")


def _candidates(users, items, stamps) -> pa.Table:
    return pa.table({
        "row": pa.array(range(len(users)), pa.int64()), "user_id": pa.array(users, pa.int32()),
        "item_id": pa.array(items, pa.int32()), "timestamp": pa.array(stamps, pa.int64()),
    })  # fmt: skip


def test_a_stored_interaction_gets_its_samples_history(interactions):
    samples = build_samples(interactions, min_history=0, max_history=MAX_HISTORY).df()
    candidates = _candidates(samples.user_id, samples.item_id, samples.timestamp)
    rows = histories_as_of(candidates, interactions, MAX_HISTORY).to_pandas().set_index("row")
    for position, sample in samples.reset_index(drop=True).iterrows():
        row = rows.loc[position]
        assert list(row.history_item_ids) == list(sample.history_item_ids), sample.to_dict()
        assert list(row.history_ratings) == list(sample.history_ratings)
        assert row.history_length == sample.history_length


def test_ties_timestamps_between_interactions_and_the_latest(interactions):
    # At t=200: items rated at 200 with a smaller id come first (2 < 5 < 9).
    candidates = _candidates([1, 1, 1, 1, 2], [6, 1, 8, 8, 9], [200, 200, 250, None, 10])
    rows = histories_as_of(candidates, interactions, MAX_HISTORY).to_pandas().set_index("row")
    assert list(rows.loc[0].history_item_ids) == [7, 2, 5]
    assert list(rows.loc[1].history_item_ids) == [7]
    assert list(rows.loc[2].history_item_ids) == [2, 5, 9] and rows.loc[2].n_earlier == 4
    # No timestamp: every interaction of the user, the newest MAX_HISTORY of them.
    assert list(rows.loc[3].history_item_ids) == [9, 3, 4] and rows.loc[3].n_earlier == 6
    assert rows.loc[3].history_length == MAX_HISTORY
    # Before the user's first interaction: an empty history.
    assert list(rows.loc[4].history_item_ids) == [] and rows.loc[4].history_length == 0


def test_rows_come_in_scoring_order(interactions):
    candidates = _candidates([2, 1, 1, 1], [1, 9, 2, 4], [None, 300, 300, 100])
    rows = histories_as_of(candidates, interactions, MAX_HISTORY)
    # timestamp (missing last), then user, item: the order of the samples' ids.
    assert rows.column("row").to_pylist() == [3, 2, 1, 0]


def test_the_history_rule_comes_from_source_info():
    assert HistoryRule.of({"min_history": 5, "max_history": 60}) == HistoryRule(5, 60)
    with pytest.raises(UserInputError, match=r"kedro run --nodes ingest\.describe_source"):
        HistoryRule.of({"format": "recbole"})
