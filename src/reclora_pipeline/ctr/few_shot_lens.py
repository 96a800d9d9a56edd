"""The lens CRM trained on the LLM's few rows only: the paper's "w/o Few2Many" ablation.

RecLoRA's lens is a CRM trained on the whole train split (the "many"), while the LLM trains
on ``n_train`` rows (the "few"). The ablation trains the same CRM (same model, options and
seed) on those ``n_train`` rows alone, early-stopped on the LLM's valid rows, and hands the
gates its user representations instead. The gap between the two RecLoRAs is what the many
rows add through the lens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from reclora_pipeline.ctr.features import CTRFeatures, CTRVocab
from reclora_pipeline.ctr.lens import new_crm
from reclora_pipeline.ctr.lens_tables import rows_of, user_repr_table
from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.ctr.training import score, train_ctr
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.typed_settings import check_fields, parse, setting


@dataclass(frozen=True)
class FewShotLensTraining:
    """How the few-row lens trains where it must differ from the full lens: a few hundred
    rows at the full lens's batch of 512 would be one step per epoch."""

    batch_size: int = setting(32, minimum=1)
    max_epochs: int = setting(20, minimum=1)
    patience: int = setting(3, minimum=0)

    def __post_init__(self) -> None:
        check_fields(self)


def lens_recipe(settings: CtrLensSettings) -> dict[str, Any]:
    """The settings the lens was built and trained with, for stages that rebuild it."""
    return dataclasses.asdict(settings)


def settings_from_recipe(recipe: Mapping[str, Any]) -> CtrLensSettings:
    """The inverse of :func:`lens_recipe` (checked like the ``ctr_lens`` parameters)."""
    return parse(CtrLensSettings, dict(recipe), "lens_recipe")


def train_few_shot_lens(
    features: CTRFeatures,
    vocab: CTRVocab,
    settings: CtrLensSettings,
    subsets: Mapping[str, np.ndarray],
    training: FewShotLensTraining,
) -> tuple[pa.Table, dict[str, Any]]:
    """The lens CRM trained on ``subsets["train"]`` (early stop on ``subsets["valid"]``);
    its ``user_repr`` table for every row of every subset and a report (rows, epochs, its
    AUC on each subset)."""
    by_subset = {name: rows_of(features, ids, name) for name, ids in subsets.items()}
    for name in ("train", "valid"):
        _require_both_classes(by_subset[name], name)
    config = dataclasses.replace(
        settings.train_config(settings.crm),
        batch_size=training.batch_size,
        max_epochs=training.max_epochs,
        patience=training.patience,
        progress=False,
    )
    model = new_crm(settings.crm, vocab, settings)
    result = train_ctr(model, by_subset["train"], by_subset["valid"], config)
    tables, report = [], {"crm": settings.crm, "epochs": result.epochs, "auc": {}, "rows": {}}
    for name, rows in by_subset.items():
        probability = score(model, rows)
        tables.append(user_repr_table(model, rows, probability))
        report["rows"][name] = len(rows)
        report["auc"][name] = _auc_where_defined(rows.label.numpy(), probability)
    report["best_epoch"] = result.best_epoch
    return pa.concat_tables(tables), report


def _require_both_classes(rows: CTRFeatures, subset: str) -> None:
    """The few-row lens learns from the train rows and early-stops on the valid rows' AUC:
    each must hold clicks and non-clicks."""
    labels = rows.label.numpy()
    if len(np.unique(labels[~np.isnan(labels)])) < 2:
        raise UserInputError(
            f"the few2many {subset} rows ({len(rows)}) hold a single class, so the lens "
            f"cannot be retrained on them: raise few2many.n_{subset}"
        )


def _auc_where_defined(labels: np.ndarray, probability: np.ndarray) -> float | None:
    """AUC over the labelled rows; None when they hold a single class."""
    known = ~np.isnan(labels)
    try:
        return round(auc(labels[known], probability[known]), 6)
    except ValueError:
        return None
