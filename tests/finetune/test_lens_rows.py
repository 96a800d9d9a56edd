"""Few2Many rows seen through another lens."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.finetune.lens_rows import subset_sample_ids, with_lens


def few2many_rows() -> pa.Table:
    return pa.table(
        {
            "sample_id": [5, 1, 9, 3],
            "subset": ["train", "valid", "train", "test"],
            "prompt": ["a", "b", "c", "d"],
            "user_repr": pa.array([[0.0, 0.0]] * 4, pa.list_(pa.float32(), 2)),
            "crm_probability": [0.5, 0.5, 0.5, 0.5],
        }
    )


def test_subsets_keep_their_row_order():
    ids = subset_sample_ids(few2many_rows())
    assert {name: value.tolist() for name, value in ids.items()} == {
        "train": [5, 9], "valid": [1], "test": [3]
    }  # fmt: skip


def test_lens_columns_are_matched_on_sample_id_and_the_rest_is_kept():
    lens = pa.table(
        {
            "sample_id": [1, 3, 5, 9],
            "user_repr": pa.array([[1, 1], [3, 3], [5, 5], [9, 9]], pa.list_(pa.float32(), 2)),
            "crm_probability": [0.1, 0.3, 0.5, 0.9],
        }
    )
    seen = with_lens(few2many_rows(), lens)
    assert seen.column_names == few2many_rows().column_names
    assert seen.column("prompt").to_pylist() == ["a", "b", "c", "d"]
    assert seen.column("crm_probability").to_pylist() == [0.5, 0.1, 0.9, 0.3]
    assert np.array(seen.column("user_repr").to_pylist())[:, 0].tolist() == [5, 1, 9, 3]
    assert seen.schema.field("user_repr").type == pa.list_(pa.float32(), 2)


def test_rows_the_lens_did_not_describe_are_a_clear_error():
    lens = pa.table(
        {
            "sample_id": [1, 5],
            "user_repr": pa.array([[1, 1], [5, 5]], pa.list_(pa.float32(), 2)),
            "crm_probability": [0.1, 0.5],
        }
    )
    with pytest.raises(UserInputError, match="2 few2many rows have no few-row lens output"):
        with_lens(few2many_rows(), lens)
