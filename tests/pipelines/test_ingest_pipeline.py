"""The ingest pipeline on fixture data with the SequentialRunner and the project's catalog."""

from __future__ import annotations

import pytest
from kedro.runner import SequentialRunner

from reclora_pipeline.pipelines.ingest import create_pipeline
from tests.pipelines.catalog import project_parameters, temporary_catalog
from tests.sources import WRITERS


@pytest.mark.parametrize("data_format", ["ml-1m", "goodreads"])
def test_ingest_pipeline_runs_end_to_end_on_fixture_files(tmp_path, world, database, data_format):
    folder = WRITERS[data_format](tmp_path / "source", world)
    params = project_parameters()
    params["ingest"].update(
        format=data_format, path=str(folder), k_core=2, min_history=3, max_history=5
    )
    catalog = temporary_catalog(tmp_path, params)

    SequentialRunner().run(create_pipeline(), catalog)

    summary = catalog.load("ingest_summary")
    assert summary["train"] + summary["valid"] + summary["test"] == summary["interactions"]
    assert summary["interactions"] <= len(world.ratings)
    assert 0 < summary["samples"] <= summary["interactions"]
    assert all(isinstance(value, int) for value in summary.values())
    samples = catalog.load("samples").df()
    assert samples.history_length.between(3, 5).all()
    assert samples.sample_id.is_unique
