"""Thin predict nodes: the parsed predict settings in, a predict library call, a table out.

Datasets that exist once per arm or per CRM come in positionally, in ``ARMS`` /
``TRAINED_CRMS`` order (the pipeline fixes ``arms`` / ``crms``); a node picks the one
``predict.arm`` or the lens recipe names.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa

from reclora_pipeline.compute import use_threads
from reclora_pipeline.ctr.lens import StateDict
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.predict.candidates import read_candidates_file, resolve_candidates
from reclora_pipeline.predict.histories import HistoryRule
from reclora_pipeline.predict.rows import Lens, TextRecipe, prediction_rows
from reclora_pipeline.predict.scoring import (
    predictions_table,
    read_rows,
    score_rows,
    scoring_job,
    trained_base,
)
from reclora_pipeline.predict.settings import PredictSettings

logger = logging.getLogger(__name__)


def read_candidates(
    settings: PredictSettings,
    users: DuckDBTable,
    items: DuckDBTable,
    *finetune_reports: dict[str, Any],
    arms: tuple[str, ...],
) -> pa.Table:
    """``prediction_candidates``: the candidates file's rows with dense ids, checked, after
    checking that ``predict.arm`` was trained (both fail before any model is loaded)."""
    trained_base(settings.arm, dict(zip(arms, finetune_reports, strict=True)))
    path = settings.candidates_path()
    candidates = resolve_candidates(read_candidates_file(path), path, users, items)
    logger.info("%d candidates from %s", candidates.num_rows, path)
    return candidates


def build_prediction_rows(
    prediction_candidates: DuckDBTable,
    interactions: DuckDBTable,
    users: DuckDBTable,
    item_descriptions: DuckDBTable,
    item_embeddings: DuckDBTable,
    source_info: dict[str, Any],
    prompt_recipe: dict[str, Any],
    ctr_vocabulary: dict[str, Any],
    lens_recipe: dict[str, Any],
    settings: PredictSettings,
    *checkpoints: StateDict,
    crms: tuple[str, ...],
) -> pa.Table:
    """``prediction_rows``: each candidate's history as of its time, the prompt the arm
    reads and the frozen lens CRM's ``user_repr``."""
    use_threads(settings.torch_threads, "predict.torch_threads")
    text = TextRecipe.of(item_descriptions.df(), users.df(), prompt_recipe)
    lens = Lens.of(lens_recipe, ctr_vocabulary, dict(zip(crms, checkpoints, strict=True)))
    return prediction_rows(
        prediction_candidates.arrow(), interactions, item_embeddings,
        HistoryRule.of(source_info), text, lens, settings.arm,
    )  # fmt: skip


def score_candidates(
    prediction_rows: DuckDBTable, settings: PredictSettings, *arm_files: Any, arms: tuple[str, ...]
) -> tuple[pa.Table, pa.Table]:
    """``predictions`` (table) and ``prediction_file`` (parquet): P(Yes) of ``predict.arm``
    per candidate. ``arm_files`` are every arm's adapter folder, then every arm's report."""
    adapters = dict(zip(arms, arm_files[: len(arms)], strict=True))
    reports = dict(zip(arms, arm_files[len(arms) :], strict=True))
    job = scoring_job(settings, trained_base(settings.arm, reports), Path(adapters[settings.arm]))
    rows = read_rows(prediction_rows)
    scores = score_rows(rows, job, settings.launch)
    table = predictions_table(rows, scores, settings.arm)
    return table, table
