"""Which samples each LLM subset holds: a seeded draw per subset from the split of its name."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from reclora_pipeline.duckdb_store import DuckDBTable, quote_identifier
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.few2many.selection import select
from reclora_pipeline.few2many.settings import Few2ManySettings

logger = logging.getLogger(__name__)


def candidates(
    samples: DuckDBTable, crm_predictions: DuckDBTable, lens: str, split: str
) -> pa.Table:
    """``sample_id``, ``user_id`` and the lens CRM's ``crm_probability`` (its column of
    ``crm_predictions``) of every sample of ``split``, ordered by ``sample_id``."""
    if lens not in crm_predictions.columns():
        raise UserInputError(
            f"crm_predictions has no column for the lens CRM {lens!r} "
            f"(columns: {crm_predictions.columns()}): rerun ctr_lens"
        )
    return samples.connection.sql(
        f"SELECT s.sample_id, s.user_id, p.{quote_identifier(lens)} AS crm_probability "
        f"FROM {samples.sql_name} s JOIN {crm_predictions.sql_name} p USING (sample_id) "
        "WHERE s.split = ? ORDER BY s.sample_id",
        params=[split],
    ).to_arrow_table()


def draw_subsets(
    samples: DuckDBTable, crm_predictions: DuckDBTable, lens: str, settings: Few2ManySettings
) -> pa.Table:
    """``sample_id``, ``subset`` and the lens's ``crm_probability`` of every chosen sample;
    subset ``train`` comes from the train split by ``settings.strategy``, ``valid`` and
    ``test`` uniformly from theirs.

    A subset larger than its split is a ``ParameterError`` naming its size setting.
    """
    chosen = []
    for subset, (size, strategy) in settings.subsets().items():
        pool = candidates(samples, crm_predictions, lens, subset)
        pool_ids = pool.column("sample_id").to_numpy()
        probability = pool.column("crm_probability").to_numpy()
        ids = select(
            pool_ids,
            size,
            strategy,
            settings.seed,
            user_ids=pool.column("user_id").to_numpy(),
            crm_probability=probability,
            parameter=f"few2many.n_{subset}",
            pool=f"the {subset} split",
        )
        logger.info("few2many %s: %d of %d samples (%s)", subset, len(ids), pool.num_rows, strategy)
        chosen.append(
            pa.table(
                {
                    "sample_id": ids,
                    "subset": [subset] * len(ids),
                    # The pool is in id order, so each chosen id is found by bisection.
                    "crm_probability": probability[np.searchsorted(pool_ids, ids)],
                }
            )
        )
    return pa.concat_tables(chosen)
