"""Each candidate's behaviour history as of its timestamp, by the rule of the samples.

The samples (``ingest.samples.build_samples``) order a user's interactions by
(timestamp, item_id) and give each sample the last ``max_history`` interactions strictly
before it in that order. A candidate (user, item, t) gets the same: the interactions with
a timestamp before t, or at t with a smaller item id, so a candidate that repeats a
stored interaction gets exactly that sample's history. Without a timestamp, the history
is every interaction of the user (as of the latest one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import UserInputError

# The order predict scores its rows in. The samples' ids follow (timestamp, user, item)
# (``ingest.interactions.label_and_split``), so stored samples are scored in sample_id
# order, in the same length-sorted batches as the evaluation's.
SCORING_ORDER = "timestamp NULLS LAST, user_id, item_id, row"
# The name the candidates are registered under while their histories are gathered.
_VIEW = "predict_history_candidates"


@dataclass(frozen=True)
class HistoryRule:
    """How long the samples' histories are (ingest's ``min_history`` / ``max_history``)."""

    min_history: int
    max_history: int

    @classmethod
    def of(cls, source_info: Mapping[str, Any]) -> HistoryRule:
        """The rule ingest recorded in ``source_info``."""
        missing = [key for key in ("min_history", "max_history") if key not in source_info]
        if missing:
            raise UserInputError(
                f"source_info has no {' or '.join(missing)} (written by an older ingest run): "
                "run `kedro run --nodes ingest.describe_source` to record them"
            )
        return cls(int(source_info["min_history"]), int(source_info["max_history"]))


def histories_as_of(candidates: pa.Table, interactions: DuckDBTable, max_history: int) -> pa.Table:
    """``candidates`` (``row``, dense ``user_id`` / ``item_id``, ``timestamp``, any other
    columns) with ``history_item_ids``, ``history_ratings`` (oldest first, the newest
    ``max_history``), ``history_length`` and ``n_earlier`` (every earlier interaction),
    in :data:`SCORING_ORDER`."""
    connection = interactions.connection
    connection.register(_VIEW, candidates)
    try:
        return connection.sql(
            f"""WITH earlier AS (
                  SELECT c.row, i.item_id, i.rating, i.timestamp,
                         row_number() OVER (PARTITION BY c.row
                                            ORDER BY i.timestamp DESC, i.item_id DESC) AS back
                  FROM {_VIEW} c JOIN {interactions.sql_name} i ON i.user_id = c.user_id
                  WHERE c.timestamp IS NULL OR i.timestamp < c.timestamp
                     OR (i.timestamp = c.timestamp AND i.item_id < c.item_id)
                ), lists AS (
                  SELECT row, count(*) AS n_earlier,
                         list(item_id ORDER BY timestamp, item_id)
                           FILTER (WHERE back <= {int(max_history)}) AS ids,
                         list(rating::FLOAT ORDER BY timestamp, item_id)
                           FILTER (WHERE back <= {int(max_history)}) AS ratings
                  FROM earlier GROUP BY row
                )
                SELECT c.*, coalesce(l.ids, []::INTEGER[]) AS history_item_ids,
                       coalesce(l.ratings, []::FLOAT[]) AS history_ratings,
                       least(coalesce(l.n_earlier, 0), {int(max_history)})::INTEGER
                         AS history_length,
                       coalesce(l.n_earlier, 0)::BIGINT AS n_earlier
                FROM {_VIEW} c LEFT JOIN lists l USING (row)
                ORDER BY {SCORING_ORDER}"""
        ).to_arrow_table()
    finally:
        connection.unregister(_VIEW)
