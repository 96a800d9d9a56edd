"""Thin few2many nodes: selection by the few2many library, rows assembled in DuckDB."""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.few2many.recency import recency_histories
from reclora_pipeline.few2many.selection import STRATEGIES, select
from reclora_pipeline.item_text.prompt_table import render_prompt_table

# Subset name -> the split it is drawn from and the parameter giving its size.
SUBSETS = {"train": ("train", "n_train"), "valid": ("valid", "n_valid"), "test": ("test", "n_test")}

logger = logging.getLogger(__name__)


def check_few2many_parameters(params: dict[str, Any]) -> None:
    """Fail before any work on an unusable few2many setting."""
    if params["strategy"] not in STRATEGIES:
        raise ParameterError(
            f"few2many.strategy={params['strategy']!r} is not known; accepted values: "
            f"{list(STRATEGIES)}"
        )
    for _, size in SUBSETS.values():
        value = params[size]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(f"few2many.{size} must be a positive integer, got {value!r}")


def select_llm_samples(
    prompts: DuckDBTable,
    samples: DuckDBTable,
    user_repr: DuckDBTable,
    crm_predictions: DuckDBTable,
    item_descriptions: DuckDBTable,
    users: DuckDBTable,
    language_model_info: dict[str, Any],
    params: dict[str, Any],
    ctr_lens_params: dict[str, Any],
    item_text_params: dict[str, Any],
    ingest_params: dict[str, Any],
) -> pa.Table:
    """``few2many_samples``: one row per selected sample with its subset, prompts and user_repr.

    Train rows follow ``few2many.strategy``; valid and test rows are always a
    seeded uniform draw, so every arm and strategy is scored on the same rows.
    """
    check_few2many_parameters(params)
    connection = prompts.connection
    crm = ctr_lens_params["crm"]
    if crm not in crm_predictions.columns():
        raise ParameterError(
            f"ctr_lens.crm={crm!r} has no predictions in crm_predictions; rerun ctr_lens"
        )
    chosen = []
    for subset, (split, size) in SUBSETS.items():
        pool = _candidates(prompts, crm_predictions, crm, split)
        strategy = params["strategy"] if subset == "train" else "random"
        ids = select(
            pool.column("sample_id").to_numpy(),
            int(params[size]),
            strategy,
            int(params["seed"]),
            user_ids=pool.column("user_id").to_numpy(),
            crm_probability=pool.column("crm_probability").to_numpy(),
            parameter=f"few2many.{size}",
            pool=f"the {split} split",
        )
        logger.info("few2many %s: %d of %d samples (%s)", subset, len(ids), pool.num_rows, strategy)
        chosen.append(pa.table({"sample_id": ids, "subset": [subset] * len(ids)}))
    # A registered view, not a Python-variable scan: explicit, and dropped afterwards.
    connection.register("few2many_selected", pa.concat_tables(chosen))
    try:
        rows = connection.sql(
            f"""SELECT sel.subset, p.sample_id, p.user_id, p.item_id, p.label, p.split,
                       p.prompt, p.answer, p.prompt_tokens, s.history_length,
                       s.history_item_ids, s.history_ratings, u.user_repr,
                       c.{crm} AS crm_probability
                FROM few2many_selected sel
                JOIN {prompts.sql_name} p USING (sample_id)
                JOIN {samples.sql_name} s USING (sample_id)
                JOIN {user_repr.sql_name} u USING (sample_id)
                JOIN {crm_predictions.sql_name} c USING (sample_id)
                ORDER BY sel.subset, p.sample_id"""
        ).to_arrow_table()
    finally:
        connection.unregister("few2many_selected")
    return _with_recency_prompts(
        rows, item_descriptions, users, language_model_info, item_text_params, ingest_params
    )


def _candidates(
    prompts: DuckDBTable, crm_predictions: DuckDBTable, crm: str, split: str
) -> pa.Table:
    """``sample_id``, ``user_id`` and the CRM's probability of every sample of ``split``."""
    return prompts.connection.sql(
        f"SELECT p.sample_id, p.user_id, c.{crm} AS crm_probability "
        f"FROM {prompts.sql_name} p JOIN {crm_predictions.sql_name} c USING (sample_id) "
        f"WHERE p.split = '{split}' ORDER BY p.sample_id"
    ).to_arrow_table()


def _with_recency_prompts(
    rows: pa.Table,
    item_descriptions: DuckDBTable,
    users: DuckDBTable,
    language_model_info: dict[str, Any],
    item_text_params: dict[str, Any],
    ingest_params: dict[str, Any],
) -> pa.Table:
    """Add ``recency_prompt``: the same prompt with the last K_text items as history."""
    ids, ratings = recency_histories(
        rows.column("history_item_ids"),
        rows.column("history_ratings"),
        rows.column("item_id").to_numpy(),
        int(item_text_params["k_text"]),
    )
    frame = rows.select(["sample_id", "user_id", "item_id", "label", "split"]).to_pandas()
    frame["recency_ids"], frame["recency_ratings"] = ids.to_pylist(), ratings.to_pylist()
    rendered = render_prompt_table(
        frame,
        ("recency_ids", "recency_ratings"),
        item_descriptions.df(),
        users.df(),
        item_text_params,
        ingest_params["format"],
        language_model_info["name_or_path"],
    )
    return rows.drop_columns(["history_item_ids", "history_ratings"]).append_column(
        "recency_prompt", rendered.column("prompt")
    )


def summarize_few2many(few2many_samples: DuckDBTable) -> dict[str, Any]:
    """Rows, positives, users and prompt length per subset."""
    stats = few2many_samples.connection.sql(
        f"SELECT subset, count(*), sum(label), count(DISTINCT user_id), "
        f"median(prompt_tokens), max(prompt_tokens) "
        f"FROM {few2many_samples.sql_name} GROUP BY subset ORDER BY subset"
    ).fetchall()
    summary = {
        subset: {
            "samples": int(n),
            "positives": int(positives),
            "users": int(n_users),
            "median_prompt_tokens": float(median),
            "max_prompt_tokens": int(longest),
        }
        for subset, n, positives, n_users, median, longest in stats
    }
    logger.info("few2many summary: %s", summary)
    return summary
