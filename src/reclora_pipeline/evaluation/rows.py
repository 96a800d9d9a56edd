"""The Few2Many test rows every model is scored and compared on, and the predictions table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.finetune.run import Subset, subset

if TYPE_CHECKING:  # only an annotation: the module imports without DuckDB
    from reclora_pipeline.duckdb_store import DuckDBTable

PREDICTION_SCHEMA = pa.schema([("sample_id", pa.int64()), ("probability", pa.float64())])


def rows_to_score(few2many_samples: DuckDBTable, arm: str) -> tuple[Subset, np.ndarray]:
    """The test rows as ``arm`` reads them, and their sample ids in the same order."""
    rows = few2many_samples.connection.sql(
        f"SELECT * FROM {few2many_samples.sql_name} WHERE subset = 'test' ORDER BY sample_id"
    ).to_arrow_table()
    # subset() orders by sample_id too, so the ids line up with its rows.
    return subset(rows, "test", arm), rows.column("sample_id").to_numpy()


def labelled_rows(few2many_samples: DuckDBTable) -> pa.Table:
    """``sample_id``, ``user_id``, ``label`` and ``history_length`` of the test rows, by
    sample id; every row must have a label (AUC needs them all)."""
    rows = few2many_samples.connection.sql(
        f"SELECT sample_id, user_id, label, history_length FROM {few2many_samples.sql_name} "
        "WHERE subset = 'test' ORDER BY sample_id"
    ).to_arrow_table()
    if rows.num_rows == 0:
        raise UserInputError("few2many_samples has no test rows: rerun the few2many pipeline")
    if rows.column("label").null_count:
        raise UserInputError(
            f"the test subset has {rows.column('label').null_count} rows without a label "
            "(column 'label' of few2many_samples): AUC needs every test label"
        )
    return rows


def predictions_table(sample_ids: np.ndarray, probs: np.ndarray) -> pa.Table:
    """One model's ``predictions_<model>`` table: P(Yes) per test sample id."""
    return pa.table(
        [pa.array(sample_ids, pa.int64()), pa.array(probs, pa.float64())], schema=PREDICTION_SCHEMA
    )


def no_predictions() -> pa.Table:
    """The predictions of an arm that was not trained: no rows, which the comparison skips."""
    return PREDICTION_SCHEMA.empty_table()
