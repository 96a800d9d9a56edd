"""The rows of the chosen samples: histories and the lens's outputs joined in DuckDB, and the
prompts rendered for those rows only."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.item_text.prompt_table import (
    ID_COLUMNS,
    TEXT_HISTORY,
    PromptRecipe,
    retrieved_prompt_table,
)

# The name the selection is registered under while the join runs.
_SELECTION_VIEW = "few2many_selected"
# The prompt's columns, as render_prompt_table names them.
PROMPT_COLUMNS = ("prompt", "answer", "prompt_tokens")


def selected_rows(
    selection: pa.Table,
    samples: DuckDBTable,
    retrieved_histories: DuckDBTable,
    user_repr: DuckDBTable,
) -> pa.Table:
    """One row per ``selection`` row (``sample_id``, ``subset``) with its ids, its full and
    its retrieved text-side history lists, and the lens's ``user_repr`` and
    ``crm_probability``, ordered by subset then sample."""
    connection = samples.connection
    # A registered view, not a Python-variable scan: explicit, and dropped afterwards.
    connection.register(_SELECTION_VIEW, selection)
    try:
        return connection.sql(
            f"""SELECT sel.subset, s.sample_id, s.user_id, s.item_id, s.label, s.split,
                       s.history_length, s.history_item_ids, s.history_ratings,
                       h.{TEXT_HISTORY[0]}, h.{TEXT_HISTORY[1]}, u.user_repr, u.crm_probability
                FROM {_SELECTION_VIEW} sel
                JOIN {samples.sql_name} s USING (sample_id)
                JOIN {retrieved_histories.sql_name} h USING (sample_id)
                JOIN {user_repr.sql_name} u USING (sample_id)
                ORDER BY sel.subset, s.sample_id"""
        ).to_arrow_table()
    finally:
        connection.unregister(_SELECTION_VIEW)


def with_prompts(
    rows: pa.Table, items: pd.DataFrame, users: pd.DataFrame, recipe: PromptRecipe
) -> pa.Table:
    """``rows`` with ``prompt``, ``answer`` and ``prompt_tokens`` rendered by ``recipe``
    from their retrieved text-side history, in place of that history, after the id columns.

    Only the chosen rows are rendered: the LLM reads a few hundred (paper: ~100,000) of the
    millions of samples a large data set has.
    """
    rendered = retrieved_prompt_table(rows, items, users, recipe)
    kept = rows.drop_columns(list(TEXT_HISTORY))
    after_ids = kept.column_names.index(ID_COLUMNS[-1]) + 1
    for offset, name in enumerate(PROMPT_COLUMNS):
        kept = kept.add_column(after_ids + offset, name, rendered.column(name))
    return kept
