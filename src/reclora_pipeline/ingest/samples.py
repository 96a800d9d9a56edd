"""Samples with their behaviour histories, built by DuckDB window functions."""

from __future__ import annotations

import duckdb

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import ParameterError


def build_samples(
    interactions: DuckDBTable, min_history: int = 5, max_history: int = 60
) -> duckdb.DuckDBPyRelation:
    """One sample per interaction whose user has >= ``min_history`` earlier interactions.

    A user's interactions are ordered by (timestamp, item_id): the item id breaks
    timestamp ties so the order, and so every history, is deterministic. The
    history is the last ``max_history`` interactions strictly before the sample
    in that order, oldest first (newest last), as parallel lists of item ids and
    ratings. ``sample_id`` is the sample's ``interaction_id``.

    The rows are not sorted afterwards: sorting rows that carry 60-element lists
    costs more than building them (order by ``sample_id`` when reading).
    """
    if min_history < 0 or max_history < 1:
        raise ParameterError(
            f"need ingest.min_history >= 0 and ingest.max_history >= 1, "
            f"got {min_history} and {max_history}"
        )
    return interactions.connection.sql(
        "SELECT interaction_id AS sample_id, user_id, item_id, rating, label, timestamp, split, "
        "coalesce(history_item_ids, []::INTEGER[]) AS history_item_ids, "
        "coalesce(history_ratings, []::FLOAT[]) AS history_ratings, "
        f"least(n_earlier, {max_history})::INTEGER AS history_length "
        "FROM ("
        "  SELECT *, row_number() OVER user_order - 1 AS n_earlier, "
        "  list(item_id) OVER history AS history_item_ids, "
        "  list(rating::FLOAT) OVER history AS history_ratings "
        f"  FROM {interactions.sql_name} "
        "  WINDOW user_order AS (PARTITION BY user_id ORDER BY timestamp, item_id), "
        "  history AS (PARTITION BY user_id ORDER BY timestamp, item_id "
        f"    ROWS BETWEEN {max_history} PRECEDING AND 1 PRECEDING)"
        f") WHERE n_earlier >= {min_history}"
    )
