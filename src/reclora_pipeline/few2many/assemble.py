"""The rows of the chosen samples: prompts, histories and the lens's outputs, joined in DuckDB."""

from __future__ import annotations

import pyarrow as pa

from reclora_pipeline.duckdb_store import DuckDBTable

# The name the selection is registered under while the join runs.
_SELECTION_VIEW = "few2many_selected"


def selected_rows(
    selection: pa.Table, prompts: DuckDBTable, samples: DuckDBTable, user_repr: DuckDBTable
) -> pa.Table:
    """One row per ``selection`` row (``sample_id``, ``subset``) with its prompt, its
    history lists and the lens's ``user_repr`` and ``crm_probability``, ordered by
    subset then sample."""
    connection = prompts.connection
    # A registered view, not a Python-variable scan: explicit, and dropped afterwards.
    connection.register(_SELECTION_VIEW, selection)
    try:
        return connection.sql(
            f"""SELECT sel.subset, p.sample_id, p.user_id, p.item_id, p.label, p.split,
                       p.prompt, p.answer, p.prompt_tokens, s.history_length,
                       s.history_item_ids, s.history_ratings, u.user_repr, u.crm_probability
                FROM {_SELECTION_VIEW} sel
                JOIN {prompts.sql_name} p USING (sample_id)
                JOIN {samples.sql_name} s USING (sample_id)
                JOIN {user_repr.sql_name} u USING (sample_id)
                ORDER BY sel.subset, p.sample_id"""
        ).to_arrow_table()
    finally:
        connection.unregister(_SELECTION_VIEW)
