"""Prompt tables: rendered chat prompts with their answers for rows of histories.

Shared by item_text (every sample, retrieved text history) and few2many (the
selected samples only, recency history for the no-retriever ablation).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from reclora_pipeline.item_text import prompts
from reclora_pipeline.item_text.model_template import ModelTemplate
from reclora_pipeline.item_text.retrieval import RetrievalRecipe
from reclora_pipeline.missing import is_missing

ID_COLUMNS = ("sample_id", "user_id", "item_id", "label", "split")
# The retriever's text-side history (item_text.history_table): what a row's prompt holds.
TEXT_HISTORY = ("text_history_item_ids", "text_history_ratings")


def user_profiles(users: pd.DataFrame, ml1m_codes: bool) -> dict[int, dict[str, str] | None]:
    """Decoded profile fields per user id; None for users without any profile field."""
    result: dict[int, dict[str, str] | None] = {}
    for row in users.itertuples(index=False):
        known = not all(is_missing(value) for value in (row.gender, row.age, row.occupation))
        result[int(row.user_id)] = (
            prompts.decode_profile(row.gender, row.age, row.occupation, ml1m_codes)
            if known
            else None
        )
    return result


def prompt_table(
    rows: pd.DataFrame,
    history_columns: tuple[str, str],
    titles: dict[int, str],
    profiles: dict[int, dict[str, str] | None],
    template: prompts.PromptTemplate,
    tokenizer: PreTrainedTokenizerBase,
    max_prompt_tokens: int,
    model_template: ModelTemplate | None = None,
) -> pa.Table:
    """Prompt, answer, token count and kept history size for each row, the prompts in
    ``model_template`` (default ``auto``).

    ``rows`` has the id columns and two list columns (item ids, ratings) named by
    ``history_columns``; the history goes into the prompt in the order given.
    """
    ids_column, ratings_column = history_columns
    histories: list[list[tuple[str, float]]] = [
        [(titles[int(i)], float(r)) for i, r in zip(ids, rates, strict=True)]
        for ids, rates in zip(rows[ids_column], rows[ratings_column], strict=True)
    ]
    rendered, lengths, kept = prompts.render_prompts(
        template,
        tokenizer,
        [profiles.get(int(user)) for user in rows.user_id],
        histories,
        [titles[int(item)] for item in rows.item_id],
        max_prompt_tokens,
        model_template,
    )
    columns: dict[str, Any] = {name: rows[name].to_numpy() for name in ID_COLUMNS}
    columns.update(
        prompt=rendered,
        answer=prompts.answers(rows.label),
        prompt_tokens=lengths.astype(np.int32),
        history_items_in_prompt=kept.astype(np.int32),
    )
    return pa.table(columns)


@dataclass(frozen=True)
class PromptRecipe:
    """How item_text wrote its prompts, so later stages render more the same way.

    item_text writes it (``prompt_recipe``); few2many reads it back for the recency
    prompts of the no-retriever ablation.
    """

    template: prompts.PromptTemplate
    max_prompt_tokens: int
    tokenizer: str
    # Users' profile fields are MovieLens-1M codes (ingest's source_info says so).
    ml1m_codes: bool
    # History items in the prompt (item_text.k_text).
    k_text: int
    # How the user turn is wrapped for the model (item_text.prompt_template, as resolved).
    prompt_template: ModelTemplate = ModelTemplate()
    # How the histories were retrieved (predict repeats it); None in recipes written before.
    retrieval: RetrievalRecipe | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptRecipe:
        """The recipe :meth:`to_dict` wrote (one written before prompt templates: ``auto``)."""
        return cls(**{
            **data,
            "template": prompts.PromptTemplate(**data["template"]),
            "prompt_template": ModelTemplate.from_dict(data.get("prompt_template")),
            "retrieval": RetrievalRecipe.from_dict(data["retrieval"]) if data.get("retrieval")
            else None,
        })  # fmt: skip


def render_prompt_table(
    rows: pd.DataFrame,
    history_columns: tuple[str, str],
    items: pd.DataFrame,
    users: pd.DataFrame,
    recipe: PromptRecipe,
) -> pa.Table:
    """:func:`prompt_table` with the titles, profiles, templates, tokenizer and token budget
    of ``recipe``."""
    return prompt_table(
        rows,
        history_columns,
        dict(zip(items.item_id.astype(int), items.title, strict=True)),
        user_profiles(users, ml1m_codes=recipe.ml1m_codes),
        recipe.template,
        AutoTokenizer.from_pretrained(recipe.tokenizer),
        recipe.max_prompt_tokens,
        recipe.prompt_template,
    )


def retrieved_prompt_table(
    rows: pa.Table, items: pd.DataFrame, users: pd.DataFrame, recipe: PromptRecipe
) -> pa.Table:
    """:func:`render_prompt_table` of ``rows`` (the id columns and the retrieved text-side
    history, ``TEXT_HISTORY``): the prompts few2many stores and predict rebuilds."""
    frame = rows.select([*ID_COLUMNS, *TEXT_HISTORY]).to_pandas()
    return render_prompt_table(frame, TEXT_HISTORY, items, users, recipe)
