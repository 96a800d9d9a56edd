"""ingest + item_text + ctr_lens on fixture data, through the project's catalog."""

from __future__ import annotations

import pytest
import torch
from kedro.runner import SequentialRunner

from reclora_pipeline.ctr.feature_store import features_from_tensors
from reclora_pipeline.ctr.features import CTRVocab
from reclora_pipeline.ctr.sample_features import sample_features
from reclora_pipeline.ctr.settings import TRAINED_CRMS
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.pipelines.ctr_lens import create_pipeline as ctr_lens_pipeline
from reclora_pipeline.pipelines.ingest import create_pipeline as ingest_pipeline
from reclora_pipeline.pipelines.item_text import create_pipeline as item_text_pipeline
from tests.pipelines.catalog import project_parameters, temporary_catalog
from tests.sources import WRITERS
from tests.tiny_models import save_tiny_llama


def _parameters(tmp_path, world):
    params = project_parameters()
    params["ingest"].update(
        format="ml-1m", path=str(WRITERS["ml-1m"](tmp_path / "src", world)), k_core=2, min_history=3
    )
    params["item_text"].update(model=str(save_tiny_llama(tmp_path / "tiny")), pca_dim=4, k_text=3)
    params["ctr_lens"]["training"].update(max_epochs=2, batch_size=16, progress=False)
    return params


def test_ctr_lens_trains_every_crm_and_scores_every_sample(tmp_path, world, database):
    catalog = temporary_catalog(tmp_path, _parameters(tmp_path, world))

    SequentialRunner().run(ingest_pipeline() + item_text_pipeline() + ctr_lens_pipeline(), catalog)

    metrics = catalog.load("ctr_lens_metrics")
    assert set(metrics) == {"din", "sim", "deepfm"}
    for values in metrics.values():
        assert {"valid_auc", "test_auc", "test_logloss", "n_test", "epochs"} <= set(values)
        assert 1 <= values["epochs"] <= 2 and values["n_test"] > 0
    # user_repr and crm_predictions are few2many's: computed for the rows the LLM reads,
    # not for every sample.
    assert not catalog.exists("user_repr") and not catalog.exists("crm_predictions")
    # What later stages rebuild the lens from: the settings it was trained with.
    recipe = catalog.load("lens_recipe")
    assert recipe["crm"] == "din" and recipe["training"]["max_epochs"] == 2


def test_nodes_are_named_by_stage_and_take_every_crm_in_order():
    pipeline = ctr_lens_pipeline()
    assert {node.name for node in pipeline.nodes} == {
        "ctr_lens.fit_ctr_vocabulary", "ctr_lens.build_ctr_features", "ctr_lens.train_din", "ctr_lens.train_sim",
        "ctr_lens.train_deepfm", "ctr_lens.summarize_ctr_lens",
        "ctr_lens.write_lens_recipe",
    }  # fmt: skip
    by_name = {node.name: node for node in pipeline.nodes}
    assert by_name["ctr_lens.summarize_ctr_lens"].inputs == [
        f"ctr_metrics_{name}" for name in TRAINED_CRMS
    ]


def test_features_are_built_once_and_every_crm_node_reads_them():
    pipeline = ctr_lens_pipeline()
    readers = {node.name for node in pipeline.nodes if "ctr_features" in node.inputs}
    assert readers == {
        "ctr_lens.train_din", "ctr_lens.train_sim", "ctr_lens.train_deepfm",
    }  # fmt: skip
    sql_readers = {node.name for node in pipeline.nodes if "samples" in node.inputs}
    assert sql_readers == {"ctr_lens.build_ctr_features"}


def test_the_persisted_features_are_the_ones_built_from_the_tables(tmp_path, upstream, database):
    catalog = upstream.catalog(tmp_path)
    settings = catalog.load("params:ctr_lens")
    vocab = CTRVocab.from_dict(catalog.load("ctr_vocabulary"))

    stored = features_from_tensors(catalog.load("ctr_features"), settings)

    assert (tmp_path / "ctr_features.safetensors").is_file()
    built = sample_features(catalog.load("samples"), catalog.load("interactions"), vocab)
    built = built.with_view(stored.view)
    assert stored.view.long is not None  # the fixture's SIM searches the lifelong history
    for name, tensor in built.batch(slice(None)).items():
        assert torch.equal(stored.batch(slice(None))[name], tensor) or name == "label"
    assert torch.equal(stored.label.isnan(), built.label.isnan())


def test_one_crm_retrains_from_the_persisted_features(tmp_path, upstream, database):
    catalog = upstream.catalog(tmp_path, ctr_lens={"torch_threads": 1})
    before = catalog.load("ctr_metrics_sim")
    threads = torch.get_num_threads()
    try:
        SequentialRunner().run(ctr_lens_pipeline().only_nodes("ctr_lens.train_sim"), catalog)
        # The node applies ctr_lens.torch_threads before it trains.
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)

    # Same persisted features, same seed: the same model as the full run.
    assert catalog.load("ctr_metrics_sim") == before


def test_features_of_another_version_stop_the_node(tmp_path, upstream, database):
    catalog = upstream.catalog(tmp_path)
    tensors = dict(catalog.load("ctr_features"))
    tensors["hist_item"] = tensors.pop("sequence.items")  # the layout before lifelong sequences
    catalog.save("ctr_features", tensors)
    with pytest.raises(UserInputError, match="rerun ctr_lens.build_ctr_features"):
        SequentialRunner().run(ctr_lens_pipeline().only_nodes("ctr_lens.train_din"), catalog)


def test_a_shorter_history_is_read_from_the_same_features(tmp_path, upstream, database):
    # How much history a CRM reads is a setting of the view: no rebuild of the features.
    catalog = upstream.catalog(tmp_path, ctr_lens={"max_history": 2, "k_crm": 2})
    SequentialRunner().run(ctr_lens_pipeline().only_nodes("ctr_lens.train_din"), catalog)
    features = features_from_tensors(catalog.load("ctr_features"), catalog.load("params:ctr_lens"))
    assert features.batch(slice(None))["hist"].shape[1] == 2
