"""Pieces every format reader shares: the empty list, profile-less users, rating checks."""

from __future__ import annotations

from pathlib import Path

import duckdb

from reclora_pipeline.ingest.sql import sql_identifier
from reclora_pipeline.ingest.value_checks import (
    RatingScale,
    ValueRule,
    check_values,
    rating_rules,
)

NO_LIST = "CAST([] AS VARCHAR[])"


def users_without_profile(connection: duckdb.DuckDBPyConnection) -> None:
    """``users`` for formats without a user file: every user id, no profile fields."""
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE users AS SELECT DISTINCT user_id, NULL::VARCHAR AS gender, "
        "NULL::INTEGER AS age, NULL::VARCHAR AS occupation, NULL::VARCHAR AS zip_code "
        "FROM interactions ORDER BY user_id"  # DISTINCT alone returns rows in any order
    )


def check_interactions(
    connection: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    rating: str,
    time_rule: ValueRule,
    scale: RatingScale,
    header_lines: int,
) -> None:
    """Ratings inside ``scale`` (not NaN) and ``time_rule``, in the file's column names."""
    rules = [*rating_rules(rating, scale), time_rule]
    check_values(connection, path, sql_identifier(table), rules, header_lines)
