"""Few2Many rows seen through the few-row lens (the "w/o Few2Many" ablation's input)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from reclora_pipeline.ctr.feature_store import features_from_tensors
from reclora_pipeline.ctr.features import CTRVocab
from reclora_pipeline.ctr.few_shot_lens import (
    FewShotLensTraining,
    settings_from_recipe,
    train_few_shot_lens,
)
from reclora_pipeline.errors import UserInputError

# The columns the lens contributes to a Few2Many row.
LENS_COLUMNS = ("user_repr", "crm_probability")
SUBSETS = ("train", "valid", "test")


def subset_sample_ids(rows: pa.Table) -> dict[str, np.ndarray]:
    """The sample ids of each Few2Many subset, in row order."""
    subset = rows.column("subset")
    sample_id = rows.column("sample_id")
    return {
        name: pc.filter(sample_id, pc.equal(subset, name)).to_numpy().astype(np.int64)
        for name in SUBSETS
    }


def with_lens(rows: pa.Table, lens_rows: pa.Table) -> pa.Table:
    """``rows`` with their lens columns taken from ``lens_rows`` (matched on sample_id)."""
    position = pc.index_in(rows.column("sample_id"), value_set=lens_rows.column("sample_id"))
    if position.null_count:
        raise UserInputError(
            f"{position.null_count} few2many rows have no few-row lens output: rerun "
            "finetune.see_through_few_shot_lens"
        )
    for name in LENS_COLUMNS:
        column = lens_rows.column(name).take(position)
        rows = rows.set_column(rows.schema.get_field_index(name), name, column)
    return rows


def through_few_shot_lens(
    rows: pa.Table,
    ctr_features: Mapping[str, torch.Tensor],
    ctr_vocabulary: dict[str, Any],
    lens_recipe: Mapping[str, Any],
    training: FewShotLensTraining,
) -> tuple[pa.Table, dict[str, Any]]:
    """``rows`` (Few2Many) with the lens columns of the lens CRM rebuilt from
    ``lens_recipe`` and trained on their train subset alone; that CRM's report."""
    lens = settings_from_recipe(lens_recipe)
    features = features_from_tensors(ctr_features, lens)
    vocab = CTRVocab.from_dict(ctr_vocabulary)
    lens_rows, report = train_few_shot_lens(
        features, vocab, lens, subset_sample_ids(rows), training
    )
    return with_lens(rows, lens_rows), report
