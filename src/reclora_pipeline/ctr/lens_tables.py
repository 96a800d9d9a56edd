"""The tables the lens stage writes: user representations and every CRM's predictions."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
from torch import nn

from reclora_pipeline.ctr.features import CTRFeatures
from reclora_pipeline.ctr.training import score, user_representations
from reclora_pipeline.duckdb_store import DuckDBTable, quote_identifier
from reclora_pipeline.errors import UserInputError


def lens_probability(crm_predictions: DuckDBTable, crm: str, sample_ids: np.ndarray) -> np.ndarray:
    """The lens CRM's column of ``crm_predictions``, in the order of ``sample_ids``."""
    table = crm_predictions.connection.sql(
        f"SELECT sample_id, {quote_identifier(crm)} AS p FROM {crm_predictions.sql_name} ORDER BY sample_id"
    ).to_arrow_table()
    if not np.array_equal(table.column("sample_id").to_numpy(), sample_ids):
        raise UserInputError("crm_predictions and samples hold different samples: rerun ctr_lens")
    return table.column("p").to_numpy()


def user_repr_table(model: nn.Module, features: CTRFeatures, probability: np.ndarray) -> pa.Table:
    """``sample_id``, the lens CRM's ``user_repr`` (last MLP hidden vector, float32) and its
    click probability ``crm_probability`` (float64), one row per sample of ``features``.

    The probability travels with the vectors so that later stages need not know which
    CRM is the lens; it is the lens's column of ``crm_predictions`` (no second pass).
    """
    vectors = user_representations(model, features)
    return pa.table(
        {
            "sample_id": pa.array(features.sample_id.numpy()),
            "user_repr": pa.FixedSizeListArray.from_arrays(
                pa.array(vectors.ravel(), pa.float32()), vectors.shape[1]
            ),
            "crm_probability": pa.array(probability, pa.float64()),
        }
    )


def predictions_table(models: Mapping[str, nn.Module], features: CTRFeatures) -> pa.Table:
    """``sample_id`` and one click-probability column per CRM (named after it, sorted)."""
    columns = {"sample_id": pa.array(features.sample_id.numpy())}
    for name in sorted(models):
        columns[name] = pa.array(score(models[name], features), pa.float64())
    return pa.table(columns)
