"""Reading and checking a candidates file: ids mapped, every problem named with examples."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reclora_pipeline.duckdb_store import DuckDBTable, connect, replace_table
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.predict.candidates import read_candidates_file, resolve_candidates


@pytest.fixture
def store(database):
    """users and items tables: dense ids with numeric user and text item source ids."""
    connection = connect(database)
    users = pd.DataFrame({"user_id": [1, 2, 3], "source_user_id": [10, 20, 30]})
    items = pd.DataFrame({"item_id": [1, 2], "source_item_id": ["007", "b"]})
    replace_table(connection, "users", users.astype({"user_id": "int32"}))
    replace_table(connection, "items", items.astype({"item_id": "int32"}))
    return DuckDBTable(connection, "users"), DuckDBTable(connection, "items")


def _resolve(path, store):
    return resolve_candidates(read_candidates_file(path), path, *store)


def test_csv_ids_map_to_dense_ids_and_keep_their_spelling(tmp_path, store):
    path = tmp_path / "c.csv"
    path.write_text("item_id,user_id,timestamp,extra\n007,20,100,x\nb,10,,y\n")
    table = _resolve(path, store)
    assert table.column_names == [
        "row", "user_id", "item_id", "source_user_id", "source_item_id", "timestamp",
    ]  # fmt: skip
    assert table.to_pydict() == {
        "row": [0, 1], "user_id": [2, 1], "item_id": [1, 2], "source_user_id": [20, 10],
        "source_item_id": ["007", "b"], "timestamp": [100, None],
    }  # fmt: skip


def test_parquet_without_timestamp_and_with_a_datetime_timestamp(tmp_path, store):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"user_id": [30], "item_id": ["b"]}), path)
    assert _resolve(path, store).column("timestamp").to_pylist() == [None]
    stamps = pa.array(pd.to_datetime(["1970-01-01 00:01:40"]), pa.timestamp("ns"))
    pq.write_table(pa.table({"user_id": [30], "item_id": ["b"], "timestamp": stamps}), path)
    assert _resolve(path, store).column("timestamp").to_pylist() == [100]


def test_every_problem_is_reported_with_counts_and_examples(tmp_path, store):
    path = tmp_path / "bad.csv"
    lines = ["user_id,item_id,timestamp", "10,007,1", "99,007,2", "99,zzz,x"]
    lines += [f"{u},b,3" for u in range(100, 107)]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserInputError) as error:
        _resolve(path, store)
    message = str(error.value)
    assert message.startswith(f"candidates file {path}: ")
    assert "9 of 10 rows (8 distinct values) have a user_id the data set does not have" in message
    # At most five examples, each with the line it first occurs on.
    assert (
        "e.g. '99' (line 3), '100' (line 5), '101' (line 6), '102' (line 7), '103' (line 8)"
        in message
    )
    assert "'104'" not in message
    assert "1 of 10 rows (1 distinct value) have an item_id the data set does not have" in message
    assert "'zzz' (line 4)" in message
    assert "have a timestamp that is not an integer (epoch seconds), e.g. 'x' (line 4)" in message


def test_missing_columns_missing_file_and_empty_file(tmp_path, store):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"user": [10], "item_id": ["b"]}), path)
    with pytest.raises(
        UserInputError, match=r"lacks the column\(s\) \['user_id'\].*has \['user', 'item_id'\]"
    ):
        read_candidates_file(path)
    with pytest.raises(UserInputError, match=r"candidates file .*nope\.csv does not exist"):
        read_candidates_file(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("user_id,item_id\n")
    with pytest.raises(UserInputError, match="has no rows to score"):
        read_candidates_file(empty)
    unknown = tmp_path / "u.parquet"
    pq.write_table(pa.table({"user_id": [None, 20], "item_id": ["b", "b"]}), unknown)
    with pytest.raises(UserInputError, match=r"1 of 2 rows .* user_id .*<empty> \(row 1\)"):
        _resolve(unknown, store)


def test_whole_floats_are_ids_fractions_and_other_types_are_refused(tmp_path, store):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"user_id": [10.0, 30.0], "item_id": ["b", "b"]}), path)
    assert _resolve(path, store).column("user_id").to_pylist() == [1, 3]
    pq.write_table(pa.table({"user_id": [10.0, 20.5], "item_id": ["b", "b"]}), path)
    with pytest.raises(
        UserInputError,
        match=r"1 of 2 rows .* user_id that is not a whole number, e\.g\. 20\.5 \(row 2\)",
    ):
        read_candidates_file(path)
    pq.write_table(pa.table({"user_id": [[10]], "item_id": ["b"]}), path)
    with pytest.raises(
        UserInputError, match=r"user_id the data set does not have .*e\.g\. \[10\] \(row 1\)"
    ):
        _resolve(path, store)
