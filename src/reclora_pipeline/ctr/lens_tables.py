"""What the trained CRMs give the rows the LLM reads (few2many): the lens's user
representations and every CRM's predictions, computed for those rows only."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from reclora_pipeline.ctr.features import CTRFeatures
from reclora_pipeline.ctr.training import score, user_representations
from reclora_pipeline.errors import UserInputError


def rows_of(features: CTRFeatures, sample_ids: np.ndarray, what: str) -> CTRFeatures:
    """The rows of ``features`` holding ``sample_ids``, in that order; a clear error when
    some are missing (features from another run)."""
    stored = features.sample_id.numpy()
    order = np.argsort(stored, kind="stable")
    found = np.searchsorted(stored, sample_ids, sorter=order)
    found = np.minimum(found, len(stored) - 1)
    index = order[found]
    missing = sample_ids[stored[index] != sample_ids]
    if missing.size:
        raise UserInputError(
            f"{missing.size} {what} samples are not in ctr_features (e.g. sample_id "
            f"{missing[:3].tolist()}): rerun ctr_lens and few2many together"
        )
    return features.select(torch.from_numpy(index))


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


def lens_outputs(
    models: Mapping[str, nn.Module], lens: str, features: CTRFeatures, sample_ids: np.ndarray
) -> tuple[pa.Table, pa.Table]:
    """``user_repr`` (the lens's vectors and click probability) and ``crm_predictions``
    (every CRM's click probability) of the rows of ``features`` holding ``sample_ids``, in
    that order: the rows the LLM reads and is compared on, not every sample."""
    rows = rows_of(features, sample_ids, "few2many_selection")
    predictions = predictions_table(models, rows)
    user_repr = user_repr_table(models[lens], rows, predictions.column(lens).to_numpy())
    return user_repr, predictions


def lens_scorer(model: nn.Module, features: CTRFeatures) -> Callable[[np.ndarray], np.ndarray]:
    """A function of sample ids giving ``model``'s click probabilities of those rows of
    ``features``: only the rows asked for are scored."""

    def scores(sample_ids: np.ndarray) -> np.ndarray:
        return score(model, rows_of(features, sample_ids, "candidate"))

    return scores
