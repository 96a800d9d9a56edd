"""Thin ingest nodes: each calls the ingest library with the parsed ingest settings."""

from __future__ import annotations

import logging
from typing import Any

import duckdb
import pyarrow as pa

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.ingest import interactions as cleaning
from reclora_pipeline.ingest.labels import label_rule_for
from reclora_pipeline.ingest.readers import read_dataset
from reclora_pipeline.ingest.samples import build_samples
from reclora_pipeline.ingest.settings import IngestSettings
from reclora_pipeline.ingest.source_info import source_info
from reclora_pipeline.ingest.summary import ingest_summary

logger = logging.getLogger(__name__)


def read_raw_tables(settings: IngestSettings) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Read and validate the source files named by ``ingest.format`` / ``ingest.path``."""
    tables = read_dataset(
        settings.format, settings.path, settings.memory_limit, rating_scale=settings.rating_scale
    )
    logger.info(
        "read %d interactions, %d items, %d users (%s)",
        tables.interactions.num_rows, tables.items.num_rows, tables.users.num_rows,
        settings.format,
    )  # fmt: skip
    return tables.interactions, tables.items, tables.users


def describe_source(settings: IngestSettings) -> dict[str, Any]:
    """The source's format, dataset family and profile coding, for the later stages."""
    return source_info(settings)


def filter_k_core(
    raw_interactions: DuckDBTable, settings: IngestSettings
) -> duckdb.DuckDBPyRelation:
    """Repeat the user/item k-core filter until stable."""
    return cleaning.k_core_filter(raw_interactions, settings.k_core)


def index_items(core_interactions: DuckDBTable, raw_items: DuckDBTable) -> duckdb.DuckDBPyRelation:
    """Dense ids and metadata for the items left after the k-core."""
    return cleaning.index_items(core_interactions, raw_items)


def index_users(core_interactions: DuckDBTable, raw_users: DuckDBTable) -> duckdb.DuckDBPyRelation:
    """Dense ids and profiles for the users left after the k-core."""
    return cleaning.index_users(core_interactions, raw_users)


def label_and_split_interactions(
    core_interactions: DuckDBTable, items: DuckDBTable, users: DuckDBTable, settings: IngestSettings
) -> duckdb.DuckDBPyRelation:
    """Label by the dataset's rule and split 8:1:1 at global timestamp cut points."""
    rule = label_rule_for(settings.format, settings.label_rule)
    logger.info("labels: 1 when %s", rule)
    return cleaning.label_and_split(core_interactions, items, users, rule, settings.split_ratios)


def build_history_samples(
    interactions: DuckDBTable, settings: IngestSettings
) -> duckdb.DuckDBPyRelation:
    """One sample per interaction with enough earlier interactions, with its history."""
    return build_samples(interactions, settings.min_history, settings.max_history)


def summarize_ingest(
    interactions: DuckDBTable, items: DuckDBTable, users: DuckDBTable, samples: DuckDBTable
) -> dict[str, int]:
    """Row counts of the ingested tables, for people and scripts."""
    summary = ingest_summary(interactions, items, users, samples)
    logger.info("ingest summary: %s", summary)
    return summary
