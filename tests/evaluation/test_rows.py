"""The Few2Many test rows the evaluation reads, and the predictions tables it writes."""

from __future__ import annotations

import numpy as np
import pytest

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.evaluation.rows import (
    PREDICTION_SCHEMA,
    labelled_rows,
    no_predictions,
    predictions_table,
    rows_to_score,
)
from tests.evaluation.samples import few2many_samples


def test_rows_to_score_are_the_test_rows_by_sample_id():
    rows, sample_ids = rows_to_score(few2many_samples(), "vanilla_lora")
    assert sample_ids.tolist() == [10, 20, 30]
    assert rows.prompts == ["retrieved 10", "retrieved 20", "retrieved 30"]
    assert rows.user_repr[:, 0].tolist() == [10.0, 20.0, 30.0]


@pytest.mark.parametrize("arm", ["reclora_no_retriever", "tallrec"])
def test_tallrec_and_the_no_retriever_ablation_read_the_recency_prompts(arm):
    rows, _ = rows_to_score(few2many_samples(), arm)
    assert rows.prompts == ["recent 10", "recent 20", "recent 30"]


def test_labelled_rows_hold_label_and_history_length():
    rows = labelled_rows(few2many_samples())
    assert rows.column_names == ["sample_id", "user_id", "label", "history_length"]
    assert rows.column("sample_id").to_pylist() == [10, 20, 30]
    assert rows.column("label").to_pylist() == [0, 1, 1]


def test_a_test_row_without_label_is_a_clear_error():
    with pytest.raises(UserInputError, match="test subset has 1 rows without a label"):
        labelled_rows(few2many_samples([None, 0, 0, 1, 1, 0]))


def test_no_test_rows_is_a_clear_error():
    table = few2many_samples()
    table.connection.execute("DELETE FROM few2many_samples WHERE subset = 'test'")
    with pytest.raises(UserInputError, match="no test rows: rerun the few2many pipeline"):
        labelled_rows(table)


def test_predictions_tables_share_one_schema():
    table = predictions_table(np.array([3, 1]), np.array([0.25, 0.75], np.float32))
    assert table.schema == PREDICTION_SCHEMA
    assert table.column("probability").to_pylist() == [0.25, 0.75]
    assert no_predictions().schema == PREDICTION_SCHEMA and no_predictions().num_rows == 0
