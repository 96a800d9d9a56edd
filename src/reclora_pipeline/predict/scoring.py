"""P(Yes) of a trained arm for the prediction rows, loaded as the evaluation loads it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.evaluation.llm_scoring import BaseModel
from reclora_pipeline.finetune.scoring_job import ScoringJob, ScoringRows, score_job
from reclora_pipeline.finetune.settings import LaunchSettings
from reclora_pipeline.predict.histories import SCORING_ORDER
from reclora_pipeline.predict.settings import PredictSettings

# The columns of the predictions table and file, in this order.
OUTPUT_COLUMNS = ("row", "user_id", "item_id", "timestamp", "score", "arm", "history_length")


def trained_base(arm: str, reports: Mapping[str, Mapping[str, Any]]) -> BaseModel:
    """The base model and prompt length ``arm`` was trained with; a clear error when the
    arm was not trained."""
    report = reports[arm]
    if not report.get("trained", False):
        raise UserInputError(
            f"arm {arm!r} was not trained (finetune_report_{arm}): add it to "
            f"finetune.ablations and run the finetune pipeline, or choose another predict.arm"
        )
    return BaseModel.of(report, arm)


def read_rows(prediction_rows: DuckDBTable) -> pa.Table:
    """The prediction rows in scoring order (so stored samples batch as in the evaluation)."""
    return prediction_rows.connection.sql(
        f"SELECT * FROM {prediction_rows.sql_name} ORDER BY {SCORING_ORDER}"
    ).to_arrow_table()


def scoring_job(settings: PredictSettings, base: BaseModel, adapter: Path) -> ScoringJob:
    """How ``predict.arm`` scores: as the evaluation scores it (same batches, same prompt
    length), with predict's own precision, threads and launcher."""
    return ScoringJob(
        model=base.name, max_length=base.max_length, batch_size=settings.batch_size,
        bf16=settings.bf16, bf16_key="predict.bf16", torch_threads=settings.torch_threads,
        threads_key="predict.torch_threads", adapter=str(adapter), arm=settings.arm,
        int8=base.int8,
    )  # fmt: skip


def score_rows(rows: pa.Table, job: ScoringJob, launch: LaunchSettings) -> np.ndarray:
    """P(Yes) of every row, in row order, with the user input the arm reads."""
    return score_job(job, ScoringRows.from_table(rows), launch)


def predictions_table(rows: pa.Table, scores: np.ndarray, arm: str) -> pa.Table:
    """``row``, ``user_id`` / ``item_id`` in the data set's own ids, ``timestamp`` (null =
    as of the latest interaction), ``score`` = P(Yes), ``arm`` and ``history_length``,
    in the candidates file's row order."""
    table = pa.table({
        "row": rows.column("row"), "user_id": rows.column("source_user_id"),
        "item_id": rows.column("source_item_id"), "timestamp": rows.column("timestamp"),
        "score": pa.array(scores, pa.float64()), "arm": pa.array([arm] * rows.num_rows),
        "history_length": rows.column("history_length"),
    })  # fmt: skip
    return table.sort_by("row").select(list(OUTPUT_COLUMNS))
