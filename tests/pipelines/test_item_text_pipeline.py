"""ingest + item_text on fixture data with a tiny random model, through the project's catalog."""

from __future__ import annotations

from kedro.runner import SequentialRunner

from reclora_pipeline.pipelines.ingest import create_pipeline as ingest_pipeline
from reclora_pipeline.pipelines.item_text import create_pipeline as item_text_pipeline
from tests.pipelines.catalog import project_parameters, temporary_catalog
from tests.sources import WRITERS
from tests.tiny_models import save_tiny_llama


def test_item_text_pipeline_on_fixture_data(tmp_path, world, database):
    params = project_parameters()
    params["ingest"].update(
        format="ml-1m", path=str(WRITERS["ml-1m"](tmp_path / "src", world)), k_core=2, min_history=3
    )
    params["item_text"].update(model=str(save_tiny_llama(tmp_path / "tiny")), pca_dim=4, k_text=3)
    catalog = temporary_catalog(tmp_path, params)

    SequentialRunner().run(ingest_pipeline() + item_text_pipeline(), catalog)

    summary = catalog.load("item_text_summary")
    samples = catalog.load("samples").count()
    assert summary["samples"] == samples and summary["embedding_dim"] == 4
    assert summary["items_embedded"] == catalog.load("items").count()
    # The tiny model's tokenizer has no chat template: auto falls back to plain.
    assert summary["prompt_template"]["name"] == "plain"
    histories = catalog.load("retrieved_histories").df()
    assert len(histories) == samples
    assert histories.text_history_item_ids.map(len).between(1, 3).all()
    assert "crm_history_item_ids" not in histories  # ctr_lens reads the lifelong sequences
    # Prompts are few2many's: rendered for the selected rows only.
    assert not catalog.exists("prompts")
