"""Which samples each LLM subset holds: a seeded draw per subset from the split of its name."""

from __future__ import annotations

import logging

import pyarrow as pa

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.few2many.selection import select
from reclora_pipeline.few2many.settings import Few2ManySettings

logger = logging.getLogger(__name__)


def candidates(prompts: DuckDBTable, user_repr: DuckDBTable, split: str) -> pa.Table:
    """``sample_id``, ``user_id`` and the lens CRM's ``crm_probability`` of every prompted
    sample of ``split``, ordered by ``sample_id``."""
    return prompts.connection.sql(
        "SELECT p.sample_id, p.user_id, u.crm_probability "
        f"FROM {prompts.sql_name} p JOIN {user_repr.sql_name} u USING (sample_id) "
        "WHERE p.split = ? ORDER BY p.sample_id",
        params=[split],
    ).to_arrow_table()


def draw_subsets(
    prompts: DuckDBTable, user_repr: DuckDBTable, settings: Few2ManySettings
) -> pa.Table:
    """``sample_id`` and ``subset`` of every chosen sample; subset ``train`` comes from the
    train split by ``settings.strategy``, ``valid`` and ``test`` uniformly from theirs.

    A subset larger than its split is a ``ParameterError`` naming its size setting.
    """
    chosen = []
    for subset, (size, strategy) in settings.subsets().items():
        pool = candidates(prompts, user_repr, subset)
        ids = select(
            pool.column("sample_id").to_numpy(),
            size,
            strategy,
            settings.seed,
            user_ids=pool.column("user_id").to_numpy(),
            crm_probability=pool.column("crm_probability").to_numpy(),
            parameter=f"few2many.n_{subset}",
            pool=f"the {subset} split",
        )
        logger.info("few2many %s: %d of %d samples (%s)", subset, len(ids), pool.num_rows, strategy)
        chosen.append(pa.table({"sample_id": ids, "subset": [subset] * len(ids)}))
    return pa.concat_tables(chosen)
