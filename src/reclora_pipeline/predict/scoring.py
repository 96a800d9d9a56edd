"""P(Yes) of a trained arm for the prediction rows, loaded as the evaluation loads it."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.evaluation.llm_scoring import BaseModel, scoring_device
from reclora_pipeline.finetune.adapters import ArmMismatchError, load_arm, read_arm_file
from reclora_pipeline.finetune.run import user_repr_matrix
from reclora_pipeline.finetune.scoring import score_prompts
from reclora_pipeline.item_text.language_model import load_causal_lm
from reclora_pipeline.predict.histories import SCORING_ORDER

logger = logging.getLogger(__name__)

# The columns of the predictions table and file, in this order.
OUTPUT_COLUMNS = ("row", "user_id", "item_id", "timestamp", "score", "arm", "history_length")


class AdapterBaseModelError(UserInputError):
    """The arm's adapter was saved for another base model than the one it is scored on."""


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


def load_scorer(adapter: Path, arm: str, base: BaseModel) -> tuple[torch.nn.Module, Any]:
    """The arm saved in ``adapter`` on its base model (on the scoring device), and the
    tokenizer; refuses a folder of another arm or of another base model."""
    saved_arm = read_arm_file(adapter)["arm"]
    if saved_arm != arm:
        raise UserInputError(f"adapter folder {adapter} holds arm {saved_arm!r}, not {arm!r}")
    # Straight onto the scoring device, as the evaluation loads it (no second host copy).
    model, tokenizer = load_causal_lm(base.name, device=scoring_device())
    try:
        arm_model = load_arm(adapter, model)
    except ArmMismatchError as error:
        raise AdapterBaseModelError(
            f"adapter_{arm} ({adapter}) was not trained on {base.name}, the base model "
            f"finetune_report_{arm} names: {error}. Rerun the finetune pipeline"
        ) from None
    return arm_model.to(scoring_device()), tokenizer


def read_rows(prediction_rows: DuckDBTable) -> pa.Table:
    """The prediction rows in scoring order (so stored samples batch as in the evaluation)."""
    return prediction_rows.connection.sql(
        f"SELECT * FROM {prediction_rows.sql_name} ORDER BY {SCORING_ORDER}"
    ).to_arrow_table()


def score_rows(
    rows: pa.Table,
    arm_model: torch.nn.Module,
    tokenizer: Any,
    base: BaseModel,
    batch_size: int,
    bf16: bool,
) -> np.ndarray:
    """P(Yes) of every row, in row order, with the user input the arm reads."""
    user_repr = user_repr_matrix(rows.column("user_repr"))
    user_ids = rows.column("user_id").to_numpy().astype(np.int64)
    started = time.perf_counter()
    scores = score_prompts(
        arm_model,
        tokenizer,
        rows.column("prompt").to_pylist(),
        user_repr=torch.from_numpy(user_repr),
        user_ids=torch.from_numpy(user_ids),
        batch_size=batch_size,
        bf16=bf16,
        progress=True,
        max_length=base.max_length,
    )
    elapsed = time.perf_counter() - started
    logger.info("scored %d prompts in %.1f s (%.1f prompts/s)",
                len(scores), elapsed, len(scores) / max(elapsed, 1e-9))  # fmt: skip
    return scores


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
