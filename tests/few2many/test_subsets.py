"""Drawing the subsets from DuckDB tables, joining their rows and summarising them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from reclora_pipeline import duckdb_store
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.few2many.assemble import selected_rows, with_prompts
from reclora_pipeline.few2many.selection import select
from reclora_pipeline.few2many.settings import Few2ManySettings
from reclora_pipeline.few2many.subsets import candidates, draw_subsets
from reclora_pipeline.few2many.summary import subset_summary
from tests.few2many.conftest import LENS, SAMPLE_IDS, SPLITS
from tests.few2many.test_recency_prompts import _recipe

SIZES = {"n_train": 6, "n_valid": 3, "n_test": 4}


def lens_scores(sample_ids: np.ndarray) -> np.ndarray:
    """The fixture lens's probabilities; records which ids it was asked for."""
    SCORED.append(np.asarray(sample_ids).copy())
    return np.array([LENS[int(i)] for i in sample_ids])


SCORED: list[np.ndarray] = []


def test_candidates_are_one_split_in_id_order(store):
    pool = candidates(store.samples, "valid")

    expected = np.sort(SAMPLE_IDS[SPLITS == "valid"])
    np.testing.assert_array_equal(pool.column("sample_id").to_numpy(), expected)
    np.testing.assert_array_equal(pool.column("user_id").to_numpy(), expected % 7 + 1)


def test_each_subset_is_its_own_seeded_draw_from_its_split(store):
    settings = Few2ManySettings(**SIZES, strategy="crm_uncertain", seed=4)

    drawn = draw_subsets(store.samples, settings, lens_scores)

    assert drawn.column_names == ["sample_id", "subset"]
    for subset, (size, strategy) in settings.subsets().items():
        pool = candidates(store.samples, subset).column("sample_id").to_numpy()
        expected = select(
            pool, size, strategy, 4,
            crm_probability=np.array([LENS[int(i)] for i in pool]),
        )  # fmt: skip
        chosen = drawn.filter(pa.compute.equal(drawn.column("subset"), subset))
        np.testing.assert_array_equal(chosen.column("sample_id").to_numpy(), expected)
    assert draw_subsets(store.samples, settings, lens_scores).equals(drawn)


def test_only_crm_uncertain_asks_the_lens_and_only_for_the_train_split(store):
    SCORED.clear()
    draw_subsets(store.samples, Few2ManySettings(**SIZES, strategy="random"), lens_scores)
    assert SCORED == []
    draw_subsets(store.samples, Few2ManySettings(**SIZES, strategy="crm_uncertain"), lens_scores)
    assert len(SCORED) == 1
    np.testing.assert_array_equal(SCORED[0], np.sort(SAMPLE_IDS[SPLITS == "train"]))


def test_only_the_train_subset_follows_the_strategy(store):
    def drawn(strategy: str) -> dict[str, set[int]]:
        settings = Few2ManySettings(**SIZES, strategy=strategy)
        table = draw_subsets(store.samples, settings, lens_scores).to_pandas()
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
        draw_subsets(store.samples, settings, lens_scores)


def test_selected_rows_join_histories_and_the_lens_outputs(store):
    selection = pa.table({"sample_id": [130, 101, 102], "subset": ["train", "valid", "train"]})

    rows = selected_rows(selection, store.samples, store.retrieved_histories, store.user_repr)

    assert rows.column_names == [
        "subset", "sample_id", "user_id", "item_id", "label", "split", "history_length",
        "history_item_ids", "history_ratings", "text_history_item_ids", "text_history_ratings",
        "user_repr", "crm_probability",
    ]  # fmt: skip
    assert rows.column("sample_id").to_pylist() == [102, 130, 101]
    assert rows.column("history_item_ids").to_pylist()[0] == list(range(1, 2 + 102 % 6))
    assert rows.column("text_history_item_ids").to_pylist()[0] == list(range(1, 2 + 102 % 6))[-2:]
    assert rows.column("user_repr").to_pylist()[1] == [130.0] * 4
    assert rows.column("crm_probability").to_pylist() == pytest.approx([2 / 60, 30 / 60, 1 / 60])
    # The selection's temporary view is gone.
    connection = store.samples.connection
    assert not duckdb_store.table_exists(connection, "few2many_selected")
    with pytest.raises(Exception, match="few2many_selected"):
        connection.sql("SELECT * FROM few2many_selected").fetchall()


def test_prompts_are_rendered_from_the_retrieved_history_after_the_ids(store, tmp_path):
    selection = pa.table({"sample_id": [105, 110], "subset": ["test", "test"]})
    rows = selected_rows(selection, store.samples, store.retrieved_histories, store.user_repr)
    items = pd.DataFrame({"item_id": range(1, 40), "title": [f"Film{i}" for i in range(1, 40)]})
    users = pd.DataFrame({"user_id": range(1, 8), "gender": "F", "age": 25, "occupation": 4})

    result = with_prompts(rows, items, users, _recipe(tmp_path / "tokenizer"))

    assert result.column_names == [
        "subset", "sample_id", "user_id", "item_id", "label", "split", "prompt", "answer",
        "prompt_tokens", "history_length", "history_item_ids", "history_ratings", "user_repr",
        "crm_probability",
    ]  # fmt: skip
    first, second = result.column("prompt").to_pylist()
    # The retrieved text histories: items [3, 4] of 105's [1..4], [2, 3] of 110's [1..3].
    assert "Film3" in first and "Film4" in first and "Film1" not in first
    assert "Film2" in second and "Film3" in second and "Film1" not in second
    assert f"***Film{105 % 11 + 20}***" in first and f"***Film{110 % 11 + 20}***" in second
    assert result.column("answer").to_pylist() == ["Yes.", "No."]
    assert all(tokens > 0 for tokens in result.column("prompt_tokens").to_pylist())


def test_summary_counts_each_subset(store):
    connection = store.samples.connection
    selection = pa.table({"sample_id": [101, 102, 103, 104], "subset": ["test", "train"] * 2})
    rows = selected_rows(selection, store.samples, store.retrieved_histories, store.user_repr)
    # Rows come by subset, then sample: 101, 103 (test), 102, 104 (train).
    rows = rows.append_column("prompt_tokens", pa.array([21, 6, 5, 7], pa.int32()))
    duckdb_store.replace_table(connection, "few2many_samples", rows)

    summary = subset_summary(DuckDBTable(connection, "few2many_samples"))

    assert summary == {
        "test": {"samples": 2, "positives": 2, "users": 2, "median_prompt_tokens": 13.5,
                 "max_prompt_tokens": 21},
        "train": {"samples": 2, "positives": 0, "users": 2, "median_prompt_tokens": 6.0,
                  "max_prompt_tokens": 7},
    }  # fmt: skip


def test_an_oversized_train_subset_stops_before_the_lens_scores_its_split(store):
    SCORED.clear()
    settings = Few2ManySettings(**{**SIZES, "n_train": 21}, strategy="crm_uncertain")
    with pytest.raises(ParameterError, match="few2many.n_train = 21"):
        draw_subsets(store.samples, settings, lens_scores)
    assert SCORED == []
