"""Thin few2many nodes: each reads its inputs and calls the few2many library."""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.few2many.assemble import selected_rows
from reclora_pipeline.few2many.recency import with_recency_prompts
from reclora_pipeline.few2many.settings import Few2ManySettings
from reclora_pipeline.few2many.subsets import draw_subsets
from reclora_pipeline.few2many.summary import subset_summary
from reclora_pipeline.item_text.prompt_table import PromptRecipe

logger = logging.getLogger(__name__)


def select_llm_samples(
    prompts: DuckDBTable,
    samples: DuckDBTable,
    user_repr: DuckDBTable,
    item_descriptions: DuckDBTable,
    users: DuckDBTable,
    prompt_recipe: dict[str, Any],
    settings: Few2ManySettings,
) -> pa.Table:
    """``few2many_samples``: one row per selected sample with its subset, prompts, the lens
    CRM's ``user_repr`` and ``crm_probability``, and the recency prompt.

    Train rows follow ``few2many.strategy``; valid and test rows are always a
    seeded uniform draw, so every arm and strategy is scored on the same rows.
    """
    selection = draw_subsets(prompts, user_repr, settings)
    rows = selected_rows(selection, prompts, samples, user_repr)
    recipe = PromptRecipe.from_dict(prompt_recipe)
    return with_recency_prompts(rows, item_descriptions.df(), users.df(), recipe)


def summarize_few2many(few2many_samples: DuckDBTable) -> dict[str, Any]:
    """Rows, positives, users and prompt length per subset."""
    summary = subset_summary(few2many_samples)
    logger.info("few2many summary: %s", summary)
    return summary
