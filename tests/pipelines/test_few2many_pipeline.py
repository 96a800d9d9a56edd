"""few2many on the fixture world's upstream outputs, through the project's catalog."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.runner import SequentialRunner

from reclora_pipeline.ctr.settings import TRAINED_CRMS
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.pipelines.ctr_lens import create_pipeline as ctr_lens_pipeline
from reclora_pipeline.pipelines.few2many import create_pipeline as few2many_pipeline

SIZES = {"n_train": 12, "n_valid": 4, "n_test": 5}
COLUMNS = [
    "subset", "sample_id", "user_id", "item_id", "label", "split", "prompt", "answer",
    "prompt_tokens", "history_length", "user_repr", "crm_probability", "recency_prompt",
]  # fmt: skip


def test_few2many_reads_data_not_other_stages_parameters():
    pipeline = few2many_pipeline()
    assert pipeline.inputs() == {
        "samples", "retrieved_histories", "lens_recipe", "ctr_features",
        "ctr_vocabulary", *(f"ctr_checkpoint_{name}" for name in TRAINED_CRMS),
        "item_descriptions", "users", "prompt_recipe", "params:few2many",
    }  # fmt: skip
    assert {node.name for node in pipeline.nodes} == {
        "few2many.draw_llm_subsets",
        "few2many.compute_lens_outputs",
        "few2many.select_llm_samples",
        "few2many.summarize_few2many",
    }


def test_subsets_carry_prompts_and_user_representations(tmp_path, upstream, database):
    catalog = upstream.catalog(tmp_path, few2many=SIZES)
    SequentialRunner().run(few2many_pipeline(), catalog)

    rows = catalog.load("few2many_samples").df()
    assert list(rows.columns) == COLUMNS
    # Prompts, lens vectors and CRM predictions exist for the selected rows only.
    selected = catalog.load("few2many_selection").count()
    assert catalog.load("user_repr").count() == len(rows) == selected
    assert catalog.load("crm_predictions").count() == selected
    assert rows.answer.isin(["Yes.", "No."]).all()
    assert ((rows.answer == "Yes.") == (rows.label == 1)).all()
    assert (rows.prompt_tokens > 0).all()
    samples = catalog.load("samples").df().set_index("sample_id")
    assert rows.groupby("subset").size().to_dict() == {"train": 12, "valid": 4, "test": 5}
    assert (rows.split == rows.subset).all() and rows.sample_id.is_unique
    assert (samples.loc[rows.sample_id, "label"].to_numpy() == rows.label.to_numpy()).all()
    assert {len(vector) for vector in rows.user_repr} == {256}
    user_repr = catalog.load("user_repr").df().set_index("sample_id")
    first = rows.iloc[0]
    np.testing.assert_allclose(first.user_repr, user_repr.loc[first.sample_id, "user_repr"])
    # The lens CRM's probability (the default lens is din) travels with its vectors.
    lens = user_repr.loc[rows.sample_id, "crm_probability"].to_numpy()
    assert (rows.crm_probability.to_numpy() == lens).all()
    predictions = catalog.load("crm_predictions").df().set_index("sample_id")
    assert (rows.crm_probability.to_numpy() == predictions.loc[rows.sample_id, "din"]).all()
    assert rows.recency_prompt.str.contains("deduce if").all()
    assert rows.prompt.str.contains("deduce if").all()
    summary = catalog.load("few2many_summary")
    assert summary["train"]["samples"] == 12


def test_selection_is_deterministic_and_strategy_dependent(tmp_path, upstream, database):
    chosen = {}
    for run, strategy in enumerate(("random", "random", "crm_uncertain")):
        catalog = upstream.catalog(tmp_path / str(run), few2many={**SIZES, "strategy": strategy})
        SequentialRunner().run(few2many_pipeline(), catalog)
        rows = catalog.load("few2many_samples").df()
        chosen[run] = rows
    train = {run: set(rows.query("subset == 'train'").sample_id) for run, rows in chosen.items()}
    assert train[0] == train[1] and train[0] != train[2]
    # Valid and test rows do not depend on the training strategy.
    for subset in ("valid", "test"):
        assert set(chosen[0].query(f"subset == '{subset}'").sample_id) == set(
            chosen[2].query(f"subset == '{subset}'").sample_id
        )
    uncertain = chosen[2].query("subset == 'train'").crm_probability
    assert (uncertain - 0.5).abs().max() <= (chosen[0].crm_probability - 0.5).abs().max()


@pytest.mark.parametrize(("size", "split"), [("n_train", "train"), ("n_test", "test")])
def test_subset_larger_than_its_split_is_a_clear_error(tmp_path, upstream, database, size, split):
    catalog = upstream.catalog(tmp_path, few2many={**SIZES, size: 10_000_000})
    samples = catalog.load("samples")
    available = samples.connection.sql(
        f"SELECT count(*) FROM {samples.sql_name} WHERE split = '{split}'"
    ).fetchall()[0][0]
    message = (
        f"few2many.{size} = 10000000 but the {split} split has {available:,} samples: "
        f"set it to at most {available:,}"
    )
    with pytest.raises(ParameterError, match=f"^{message}$"):
        SequentialRunner().run(few2many_pipeline(), catalog)
    assert not catalog.exists("few2many_samples")


def test_the_lens_setting_picks_the_crm_behind_user_repr(tmp_path, upstream, database):
    def rows_with_lens(folder, crm: str):
        catalog = upstream.catalog(folder, ctr_lens={"crm": crm}, few2many=SIZES)
        lens_recipe = ctr_lens_pipeline().only_nodes("ctr_lens.write_lens_recipe")
        SequentialRunner().run(lens_recipe + few2many_pipeline(), catalog)
        rows = catalog.load("few2many_samples").df().set_index("sample_id")
        return rows, catalog.load("crm_predictions").df().set_index("sample_id")

    din, _ = rows_with_lens(tmp_path / "din", "din")
    sim, predictions = rows_with_lens(tmp_path / "sim", "sim")

    assert (sim.crm_probability == predictions.loc[sim.index, "sim"]).all()
    assert not (sim.crm_probability == predictions.loc[sim.index, "din"]).all()
    common = din.index.intersection(sim.index)
    assert not np.allclose(
        np.stack(din.loc[common, "user_repr"]), np.stack(sim.loc[common, "user_repr"])
    )
