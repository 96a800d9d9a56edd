"""The DuckDB store: atomic table replacement and the catalog datasets."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from kedro.io import DatasetError

from reclora_pipeline.datasets import AtomicJSONDataset, DuckDBTableDataset
from reclora_pipeline.duckdb_store import connect, quote_identifier, replace_table, table_exists


def test_failed_replacement_keeps_the_previous_table(database):
    connection = connect(database)
    replace_table(connection, "t", pa.table({"x": [1, 2, 3]}))
    failing = connection.sql(
        "SELECT 1 / (x - 2)::INTEGER AS y FROM range(5) r(x) WHERE error('boom') IS NULL"
    )
    with pytest.raises(Exception, match="boom"):
        replace_table(connection, "t", failing)
    assert connection.execute("SELECT list(x ORDER BY x) FROM t").fetchone()[0] == [1, 2, 3]
    assert not table_exists(connection, "t__staging")


def test_replace_accepts_relations_arrow_and_pandas(database):
    connection = connect(database)
    replace_table(connection, "a", pa.table({"x": [1]}))
    replace_table(connection, "b", connection.sql("SELECT x + 1 AS x FROM a"))
    replace_table(connection, "c", pd.DataFrame({"x": [3]}))
    assert connection.execute("SELECT (SELECT x FROM b) + (SELECT x FROM c)").fetchone()[0] == 5
    with pytest.raises(TypeError, match="expected a DuckDB relation"):
        replace_table(connection, "d", [1, 2])


def test_table_names_are_checked():
    with pytest.raises(ValueError, match="invalid table name"):
        quote_identifier("x; DROP TABLE y")


def test_dataset_round_trip_and_missing_table(database):
    dataset = DuckDBTableDataset(table_name="numbers", database=str(database))
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="does not exist"):
        dataset.load()
    dataset.save(pa.table({"n": [1, 2]}))
    assert dataset.load().count() == 2 and dataset.exists()


def test_atomic_json_round_trip(tmp_path):
    dataset = AtomicJSONDataset(str(tmp_path / "out" / "summary.json"))
    dataset.save({"users": 3})
    assert dataset.load() == {"users": 3}
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["summary.json"]


def test_state_dict_round_trip_and_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    import torch

    from reclora_pipeline.datasets import StateDictDataset, state_dict_dataset

    dataset = StateDictDataset(str(tmp_path / "model.safetensors"))
    dataset.save({"w": torch.arange(3.0)})

    def crash_midway(tensors, path):
        with open(path, "wb") as stream:
            stream.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(state_dict_dataset, "save_file", crash_midway)
    with pytest.raises(DatasetError, match="disk full"):  # kedro wraps the OSError
        dataset.save({"w": torch.zeros(3)})
    assert torch.equal(dataset.load()["w"], torch.arange(3.0))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
