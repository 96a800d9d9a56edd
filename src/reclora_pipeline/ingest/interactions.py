"""Cleaning the interaction log: k-core filter, dense ids, labels, temporal split (DuckDB SQL)."""

from __future__ import annotations

import logging

import duckdb

from reclora_pipeline.duckdb_store import DuckDBTable, fetch_row
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.ingest.labels import LabelRule

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")


def k_core_filter(interactions: DuckDBTable, k: int) -> duckdb.DuckDBPyRelation:
    """Keep interactions whose user and item both have >= ``k`` interactions, until stable.

    Dropping a rare item can push a user below ``k`` and vice versa, so the
    filter repeats until a pass removes nothing (the result is a fixpoint).
    """
    if k < 1:
        raise ParameterError(f"ingest.k_core must be >= 1, got {k}")
    connection = interactions.connection
    current = "_k_core_current"
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE {current} AS SELECT * FROM {interactions.sql_name}"
    )
    rows = interactions.count()
    for iteration in range(1, 1000):
        connection.execute(
            f"CREATE OR REPLACE TEMP TABLE _k_core_next AS "
            f"WITH users AS (SELECT user_id FROM {current} GROUP BY 1 HAVING count(*) >= {k}), "
            f"items AS (SELECT item_id FROM {current} GROUP BY 1 HAVING count(*) >= {k}) "
            f"SELECT c.* FROM {current} c SEMI JOIN users USING (user_id) "
            "SEMI JOIN items USING (item_id)"
        )
        connection.execute(f"DROP TABLE {current}")
        connection.execute(f"ALTER TABLE _k_core_next RENAME TO {current}")
        kept = int(fetch_row(connection, f"SELECT count(*) FROM {current}")[0])
        logger.info("k-core (k=%d) pass %d: %d -> %d interactions", k, iteration, rows, kept)
        if kept == rows:
            break
        rows = kept
    if rows == 0:
        raise ParameterError(
            f"the {k}-core of the interactions is empty: lower ingest.k_core or use more data"
        )
    return connection.table(current)


def index_items(core: DuckDBTable, raw_items: DuckDBTable) -> duckdb.DuckDBPyRelation:
    """Items that survive the k-core, with dense ids 1..n (0 stays free for padding).

    Items missing from the item file keep a NULL title rather than being dropped.
    """
    return core.connection.sql(
        "SELECT row_number() OVER (ORDER BY k.item_id)::INTEGER AS item_id, "
        "k.item_id AS source_item_id, r.title, r.year, "
        "coalesce(r.genres, []::VARCHAR[]) AS genres, coalesce(r.authors, []::VARCHAR[]) AS authors "
        f"FROM (SELECT DISTINCT item_id FROM {core.sql_name}) k "
        f"LEFT JOIN (SELECT * FROM {raw_items.sql_name} "
        "QUALIFY row_number() OVER (PARTITION BY item_id) = 1) r USING (item_id) "
        "ORDER BY 1"
    )


def index_users(core: DuckDBTable, raw_users: DuckDBTable) -> duckdb.DuckDBPyRelation:
    """Users that survive the k-core, with dense ids 1..n and their profile fields."""
    return core.connection.sql(
        "SELECT row_number() OVER (ORDER BY k.user_id)::INTEGER AS user_id, "
        "k.user_id AS source_user_id, r.gender, r.age, r.occupation, r.zip_code "
        f"FROM (SELECT DISTINCT user_id FROM {core.sql_name}) k "
        f"LEFT JOIN (SELECT * FROM {raw_users.sql_name} "
        "QUALIFY row_number() OVER (PARTITION BY user_id) = 1) r USING (user_id) "
        "ORDER BY 1"
    )


def label_and_split(
    core: DuckDBTable,
    items: DuckDBTable,
    users: DuckDBTable,
    rule: LabelRule,
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> duckdb.DuckDBPyRelation:
    """Interactions with dense ids, a binary ``label`` and a global temporal ``split``.

    ``interaction_id`` numbers the rows in (timestamp, user, item) order, from 0.

    The two cut points are timestamp quantiles of all interactions, so every
    train interaction is no later than every valid one, and valid than test.
    """
    if len(split_ratios) != 3 or min(split_ratios) < 0 or abs(sum(split_ratios) - 1) > 1e-6:
        raise ParameterError(
            f"ingest.split_ratios must be 3 non-negative numbers summing to 1, got {split_ratios}"
        )
    train_cut = split_ratios[0]
    valid_cut = split_ratios[0] + split_ratios[1]
    return core.connection.sql(
        f"WITH cuts AS (SELECT quantile_disc(timestamp, {train_cut!r}) AS t1, "
        f"quantile_disc(timestamp, {valid_cut!r}) AS t2 FROM {core.sql_name}) "
        "SELECT row_number() OVER (ORDER BY c.timestamp, u.user_id, i.item_id)::BIGINT - 1 "
        "AS interaction_id, u.user_id, i.item_id, c.rating, c.timestamp, "
        f"{rule.sql('c.rating')}::TINYINT AS label, "
        "CASE WHEN c.timestamp <= cuts.t1 THEN 'train' WHEN c.timestamp <= cuts.t2 THEN 'valid' "
        "ELSE 'test' END AS split "
        f"FROM {core.sql_name} c JOIN {users.sql_name} u ON u.source_user_id = c.user_id "
        f"JOIN {items.sql_name} i ON i.source_item_id = c.item_id CROSS JOIN cuts "
        "ORDER BY c.timestamp, u.user_id, i.item_id"
    )
