"""Upstream stages run once per test session on fixture data, copied into each test."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from reclora_pipeline import duckdb_store
from reclora_pipeline.pipelines.ctr_lens import create_pipeline as ctr_lens_pipeline
from reclora_pipeline.pipelines.ingest import create_pipeline as ingest_pipeline
from reclora_pipeline.pipelines.item_text import create_pipeline as item_text_pipeline
from tests.pipelines.catalog import project_parameters, temporary_catalog
from tests.sources import WRITERS, small_world
from tests.tiny_models import save_tiny_llama


@dataclass(frozen=True)
class Upstream:
    """A folder holding the outputs of ingest, item_text and ctr_lens, and their parameters."""

    folder: Path
    parameters: dict[str, Any]

    def catalog(self, target: Path, **overrides: dict[str, Any]) -> DataCatalog:
        """A catalog over a private copy of the outputs; ``overrides`` update parameter groups."""
        shutil.copytree(self.folder, target, dirs_exist_ok=True)
        parameters = {name: dict(values) for name, values in self.parameters.items()}
        for group, values in overrides.items():
            parameters[group].update(values)
        return temporary_catalog(target, parameters)


@pytest.fixture(scope="session")
def upstream(tmp_path_factory) -> Upstream:
    """ingest + item_text (tiny random Llama) + ctr_lens (2 epochs) on the small fixture world."""
    root = tmp_path_factory.mktemp("upstream")
    folder = root / "outputs"
    folder.mkdir()
    params = project_parameters()
    params["ingest"].update(
        format="ml-1m",
        path=str(WRITERS["ml-1m"](root / "src", small_world())),
        k_core=2,
        min_history=3,
    )
    params["item_text"].update(
        # "Yes" and "No" are the answers the fine-tune scores.
        model=str(save_tiny_llama(root / "tiny", extra_words=["Yes", "No", "."])),
        pca_dim=4,
        k_text=3,
    )
    # SIM searches the whole (lifelong) history by item-embedding similarity.
    params["ctr_lens"].update(k_crm=5, crm_retrieval="semantic", lifelong_max_history=200)
    params["ctr_lens"]["training"].update(max_epochs=2, batch_size=16, progress=False)
    catalog = temporary_catalog(folder, params)
    SequentialRunner().run(ingest_pipeline() + item_text_pipeline() + ctr_lens_pipeline(), catalog)
    duckdb_store.close_all()  # the copies must see a closed, complete database file
    return Upstream(folder, params)
