"""Samples with their behaviour histories, built by DuckDB window functions."""

from __future__ import annotations

import duckdb

from reclora_pipeline.duckdb_store import DuckDBTable


def build_samples(
    interactions: DuckDBTable, min_history: int = 5, max_history: int = 60
) -> duckdb.DuckDBPyRelation:
    """One sample per interaction whose user has >= ``min_history`` earlier interactions.

    A user's interactions are ordered by (timestamp, item_id): the item id breaks
    timestamp ties so the order, and so every history, is deterministic. The
    history is the last ``max_history`` interactions strictly before the sample
    in that order, oldest first (newest last), as parallel lists of item ids and
    ratings.
    """
    if min_history < 0 or max_history < 1:
        raise ValueError(
            f"need ingest.min_history >= 0 and ingest.max_history >= 1, "
            f"got {min_history} and {max_history}"
        )
    order = "PARTITION BY user_id ORDER BY timestamp, item_id"
    frame = f"({order} ROWS BETWEEN {max_history} PRECEDING AND 1 PRECEDING)"
    return interactions.connection.sql(
        "SELECT row_number() OVER (ORDER BY timestamp, user_id, item_id)::BIGINT - 1 AS sample_id, "
        "user_id, item_id, rating, label, timestamp, split, "
        "coalesce(history_item_ids, []::INTEGER[]) AS history_item_ids, "
        "coalesce(history_ratings, []::DOUBLE[]) AS history_ratings, "
        "len(coalesce(history_item_ids, []::INTEGER[]))::INTEGER AS history_length "
        "FROM ("
        f"  SELECT *, row_number() OVER ({order}) - 1 AS n_earlier, "
        f"  list(item_id) OVER {frame} AS history_item_ids, "
        f"  list(rating) OVER {frame} AS history_ratings "
        f"  FROM {interactions.sql_name}"
        f") WHERE n_earlier >= {min_history} "
        "ORDER BY sample_id"
    )
