"""Every supported source format through all six stages on the fixture world (issue 11).

The stage tests chain the stages on ML-1M only, so formats whose users have no
profile (ml-latest, goodreads, RecBole without ``.user``) crashed item_text in real
runs while the suite passed. Here each format runs ``full`` in-process with a tiny
random Llama and tiny sizes, and every stage's outputs are checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from reclora_pipeline.pipeline_registry import register_pipelines
from tests.pipelines.catalog import project_parameters, temporary_catalog
from tests.sources import WRITERS, World, small_world
from tests.tiny_models import save_tiny_llama

# Variant -> (ingest.format, whether its users have a profile).
VARIANTS = {
    "recbole": ("recbole", True),
    "recbole-without-user-file": ("recbole", False),
    "ml-100k": ("ml-100k", True),
    "ml-1m": ("ml-1m", True),
    "ml-latest": ("ml-latest", False),
    "goodreads": ("goodreads", False),
}
# What ingest makes of small_world() with k_core 2 and min_history 3, the same in every
# format: its valid and test splits hold 8 and 6 samples, both labels in each.
EXPECTED_SUMMARY = {
    "users": 8, "items": 12, "interactions": 72, "positives": 30,
    "train": 58, "valid": 8, "test": 6, "samples": 48,
}  # fmt: skip
# The whole valid and test splits, so AUC always sees both labels.
FEW2MANY = {"n_train": 16, "n_valid": 8, "n_test": 6}
CRMS = ("din", "sim", "deepfm")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama whose vocabulary has the answers the fine-tune scores."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny"), extra_words=["Yes", "No", "."])


def write_source(variant: str, folder: Path, world: World) -> Path:
    """The fixture world in ``variant``'s files; RecBole without ``.user`` drops that file."""
    data_format, has_profiles = VARIANTS[variant]
    path = WRITERS[data_format](folder, world)
    if data_format == "recbole" and not has_profiles:
        (path / "toy.user").unlink()
    return path


def tiny_parameters(data_format: str, source: Path, model: Path, work: Path) -> dict[str, Any]:
    """conf/base parameters with sizes that keep all six stages to a few seconds."""
    params = project_parameters()
    params["ingest"].update(format=data_format, path=str(source), k_core=2, min_history=3)
    params["item_text"].update(model=str(model), pca_dim=4, k_text=3)
    params["ctr_lens"].update(k_crm=5, lifelong_max_history=5)
    params["ctr_lens"]["training"].update(max_epochs=1, batch_size=16, progress=False)
    params["few2many"].update(FEW2MANY)
    params["finetune"]["training"].update(
        epochs=1, micro_batch_size=4, gradient_accumulation_steps=1, engine="torch",
        eval_batch_size=8, max_length=128, checkpoint_folder=str(work / "checkpoints"),
    )  # fmt: skip
    params["finetune"]["lora"].update(n_experts=2, r=2, alpha=4.0, gate_hidden=8)
    params["evaluation"].update(n_bootstrap=20, batch_size=8)
    return params


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_full_pipeline_runs_on_every_format(variant, tmp_path, tiny_model, database):
    data_format, has_profiles = VARIANTS[variant]
    source = write_source(variant, tmp_path / "source", small_world())
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    catalog = temporary_catalog(outputs, tiny_parameters(data_format, source, tiny_model, tmp_path))

    SequentialRunner().run(register_pipelines()["full"], catalog)

    check_ingest(catalog, has_profiles)
    check_prompts(catalog, has_profiles, "the book" if data_format == "goodreads" else "the movie")
    check_models(catalog)


def check_ingest(catalog: DataCatalog, has_profiles: bool) -> None:
    """The same counts from every format; profiles only where the source has them."""
    assert catalog.load("ingest_summary") == EXPECTED_SUMMARY
    genders = catalog.load("users").df().gender
    assert (genders.notna() if has_profiles else genders.isna()).all()


def check_prompts(catalog: DataCatalog, has_profiles: bool, target_kind: str) -> None:
    """One prompt per selected sample, with the sample's answer; the profile told only when
    known."""
    labels = catalog.load("samples").df().set_index("sample_id").label
    prompts = catalog.load("few2many_samples").df()
    assert len(prompts) == sum(FEW2MANY.values()) and prompts.sample_id.is_unique
    expected = labels.loc[prompts.sample_id].map({1: "Yes.", 0: "No."})
    assert prompts.answer.tolist() == expected.tolist()
    for column in ("prompt", "recency_prompt"):
        assert prompts[column].str.contains(f"will like {target_kind}").all()
        # "job is" opens the movie template's profile (the book template has none).
        told = prompts[column].str.contains("job is")
        assert told.tolist() == [has_profiles] * len(prompts)
    assert catalog.load("item_text_summary")["samples"] == EXPECTED_SUMMARY["samples"]


def check_models(catalog: DataCatalog) -> None:
    """CRMs, few2many subsets, both main arms, the lens read-out, and metrics over the whole
    test subset."""
    assert set(catalog.load("ctr_lens_metrics")) == set(CRMS)
    subsets = catalog.load("few2many_summary")
    assert {name: subsets[name]["samples"] for name in ("train", "valid", "test")} == {
        name: FEW2MANY[f"n_{name}"] for name in ("train", "valid", "test")
    }
    for arm in ("reclora", "vanilla_lora"):
        assert catalog.load(f"finetune_report_{arm}")["trained"], arm
    # The few-row lens is trained only for its ablation, which is off by default.
    assert catalog.load("few_shot_lens_report") == {"trained": False}
    assert catalog.load("few2many_samples_few_shot_lens").count() == 0
    metrics = catalog.load("metrics")
    assert set(metrics["models"]) == {"zero_shot", "reclora", "vanilla_lora", "lens_readout", *CRMS}
    for name, entry in metrics["models"].items():
        assert entry["n"] == FEW2MANY["n_test"], name
        assert 0.0 <= entry["auc"] <= 1.0 and entry["logloss"] > 0.0, name
    assert catalog.load("roc_curves_plot").startswith(b"\x89PNG")
