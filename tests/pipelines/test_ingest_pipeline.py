"""The ingest pipeline on fixture data with the SequentialRunner and an in-code catalog."""

from __future__ import annotations

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from reclora_pipeline.datasets import AtomicJSONDataset, DuckDBTableDataset
from reclora_pipeline.pipelines.ingest import create_pipeline
from reclora_pipeline.pipelines.ingest.pipeline import INGEST_TABLES
from tests.sources import WRITERS


def _catalog(tmp_path, params):
    database = str(tmp_path / "db.duckdb")
    datasets = {
        name: DuckDBTableDataset(table_name=name, database=database) for name in INGEST_TABLES
    }
    datasets["ingest_summary"] = AtomicJSONDataset(str(tmp_path / "summary.json"))
    datasets["params:ingest"] = MemoryDataset(params)
    return DataCatalog(datasets)


@pytest.mark.parametrize("data_format", ["ml-1m", "goodreads"])
def test_ingest_pipeline_runs_end_to_end_on_fixture_files(tmp_path, world, database, data_format):
    folder = WRITERS[data_format](tmp_path / "source", world)
    params = {"format": data_format, "path": str(folder), "k_core": 2, "label_rule": None,
              "split_ratios": [0.8, 0.1, 0.1], "min_history": 3, "max_history": 5}  # fmt: skip
    catalog = _catalog(tmp_path, params)

    SequentialRunner().run(create_pipeline(), catalog)

    summary = catalog.load("ingest_summary")
    assert summary["train"] + summary["valid"] + summary["test"] == summary["interactions"]
    assert summary["interactions"] <= len(world.ratings)
    assert 0 < summary["samples"] <= summary["interactions"]
    assert all(isinstance(value, int) for value in summary.values())
    samples = catalog.load("samples").df()
    assert samples.history_length.between(3, 5).all()
    assert samples.sample_id.is_unique
