"""Drawing the subsets from DuckDB tables, joining their rows and summarising them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from reclora_pipeline import duckdb_store
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.few2many.assemble import selected_rows
from reclora_pipeline.few2many.selection import select
from reclora_pipeline.few2many.settings import Few2ManySettings
from reclora_pipeline.few2many.subsets import candidates, draw_subsets
from reclora_pipeline.few2many.summary import subset_summary
from tests.few2many.conftest import SAMPLE_IDS, SPLITS

SIZES = {"n_train": 6, "n_valid": 3, "n_test": 4}


def test_candidates_are_one_split_in_id_order_with_the_lens_probability(store):
    pool = candidates(store.prompts, store.user_repr, "valid")

    expected = np.sort(SAMPLE_IDS[SPLITS == "valid"])
    np.testing.assert_array_equal(pool.column("sample_id").to_numpy(), expected)
    np.testing.assert_array_equal(pool.column("user_id").to_numpy(), expected % 7 + 1)
    np.testing.assert_allclose(pool.column("crm_probability").to_numpy(), (expected - 100) / 60)


def test_each_subset_is_its_own_seeded_draw_from_its_split(store):
    settings = Few2ManySettings(**SIZES, strategy="crm_uncertain", seed=4)

    drawn = draw_subsets(store.prompts, store.user_repr, settings)

    assert drawn.column_names == ["sample_id", "subset"]
    for subset, (size, strategy) in settings.subsets().items():
        pool = candidates(store.prompts, store.user_repr, subset)
        expected = select(
            pool.column("sample_id").to_numpy(), size, strategy, 4,
            crm_probability=pool.column("crm_probability").to_numpy(),
        )  # fmt: skip
        chosen = drawn.filter(pa.compute.equal(drawn.column("subset"), subset))
        np.testing.assert_array_equal(chosen.column("sample_id").to_numpy(), expected)
    assert draw_subsets(store.prompts, store.user_repr, settings).equals(drawn)


def test_only_the_train_subset_follows_the_strategy(store):
    def drawn(strategy: str) -> dict[str, set[int]]:
        table = draw_subsets(
            store.prompts, store.user_repr, Few2ManySettings(**SIZES, strategy=strategy)
        ).to_pandas()
        return {name: set(rows.sample_id) for name, rows in table.groupby("subset")}

    uniform, uncertain = drawn("random"), drawn("crm_uncertain")
    assert uniform["valid"] == uncertain["valid"] and uniform["test"] == uncertain["test"]
    assert uniform["train"] != uncertain["train"]


def test_a_subset_larger_than_its_split_names_its_setting(store):
    settings = Few2ManySettings(**{**SIZES, "n_valid": 21})
    with pytest.raises(
        ParameterError,
        match=r"^few2many.n_valid = 21 but the valid split has 20 samples: set it to at most 20$",
    ):
        draw_subsets(store.prompts, store.user_repr, settings)


def test_selected_rows_join_prompts_histories_and_the_lens_outputs(store):
    selection = pa.table({"sample_id": [130, 101, 102], "subset": ["train", "valid", "train"]})

    rows = selected_rows(selection, store.prompts, store.samples, store.user_repr)

    assert rows.column_names == [
        "subset", "sample_id", "user_id", "item_id", "label", "split", "prompt", "answer",
        "prompt_tokens", "history_length", "history_item_ids", "history_ratings", "user_repr",
        "crm_probability",
    ]  # fmt: skip
    assert rows.column("sample_id").to_pylist() == [102, 130, 101]
    assert rows.column("prompt").to_pylist() == ["prompt 102", "prompt 130", "prompt 101"]
    assert rows.column("history_item_ids").to_pylist()[0] == list(range(1, 2 + 102 % 6))
    assert rows.column("user_repr").to_pylist()[1] == [130.0] * 4
    assert rows.column("crm_probability").to_pylist() == pytest.approx([2 / 60, 30 / 60, 1 / 60])
    # The selection's temporary view is gone.
    assert not duckdb_store.table_exists(store.prompts.connection, "few2many_selected")
    with pytest.raises(Exception, match="few2many_selected"):
        store.prompts.connection.sql("SELECT * FROM few2many_selected").fetchall()


def test_summary_counts_each_subset(store):
    connection = store.prompts.connection
    selection = pa.table({"sample_id": [101, 102, 103, 104], "subset": ["test", "train"] * 2})
    rows = selected_rows(selection, store.prompts, store.samples, store.user_repr)
    duckdb_store.replace_table(connection, "few2many_samples", rows)

    summary = subset_summary(DuckDBTable(connection, "few2many_samples"))

    assert summary == {
        "test": {"samples": 2, "positives": 2, "users": 2, "median_prompt_tokens": 13.5,
                 "max_prompt_tokens": 21},
        "train": {"samples": 2, "positives": 0, "users": 2, "median_prompt_tokens": 6.0,
                  "max_prompt_tokens": 7},
    }  # fmt: skip
