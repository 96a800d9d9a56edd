"""Which samples each LLM subset holds: a seeded draw per subset from the split of its name."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.few2many.selection import check_size, select
from reclora_pipeline.few2many.settings import Few2ManySettings

logger = logging.getLogger(__name__)


# Lens click probabilities of the given sample ids, in their order (crm_uncertain's input).
LensScores = Callable[[np.ndarray], np.ndarray]


def candidates(samples: DuckDBTable, split: str) -> pa.Table:
    """``sample_id`` and ``user_id`` of every sample of ``split``, ordered by ``sample_id``."""
    return samples.connection.sql(
        f"SELECT sample_id, user_id FROM {samples.sql_name} WHERE split = ? ORDER BY sample_id",
        params=[split],
    ).to_arrow_table()


def draw_subsets(
    samples: DuckDBTable, settings: Few2ManySettings, lens_scores: LensScores | None = None
) -> pa.Table:
    """``sample_id`` and ``subset`` of every chosen sample; subset ``train`` comes from the
    train split by ``settings.strategy``, ``valid`` and ``test`` uniformly from theirs.

    ``lens_scores`` is called (on a whole split) only by the ``crm_uncertain`` strategy:
    the other strategies need no CRM. A subset larger than its split is a
    ``ParameterError`` naming its size setting.
    """
    chosen = []
    for subset, (size, strategy) in settings.subsets().items():
        pool = candidates(samples, subset)
        pool_ids = pool.column("sample_id").to_numpy()
        needs_lens = strategy == "crm_uncertain" and lens_scores is not None
        # Before scoring a whole split with the lens (hours at ML-25M scale), not after.
        check_size(size, len(pool_ids), f"few2many.n_{subset}", f"the {subset} split")
        ids = select(
            pool_ids,
            size,
            strategy,
            settings.seed,
            user_ids=pool.column("user_id").to_numpy(),
            crm_probability=lens_scores(pool_ids) if needs_lens else None,
            parameter=f"few2many.n_{subset}",
            pool=f"the {subset} split",
        )
        logger.info("few2many %s: %d of %d samples (%s)", subset, len(ids), pool.num_rows, strategy)
        chosen.append(pa.table({"sample_id": ids, "subset": [subset] * len(ids)}))
    return pa.concat_tables(chosen)
