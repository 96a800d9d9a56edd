"""The ingest summary: row counts a user or script can check after a run."""

from __future__ import annotations

from reclora_pipeline.duckdb_store import DuckDBTable, fetch_row


def ingest_summary(
    interactions: DuckDBTable, items: DuckDBTable, users: DuckDBTable, samples: DuckDBTable
) -> dict[str, int]:
    """Counts of users, items, interactions, positives, per-split interactions and samples."""
    counts = fetch_row(
        interactions.connection,
        "SELECT count(*), coalesce(sum(label), 0), count(*) FILTER (WHERE split = 'train'), "
        "count(*) FILTER (WHERE split = 'valid'), count(*) FILTER (WHERE split = 'test') "
        f"FROM {interactions.sql_name}",
    )
    total, positives, train, valid, test = (int(value) for value in counts)
    return {
        "users": users.count(),
        "items": items.count(),
        "interactions": total,
        "positives": positives,
        "train": train,
        "valid": valid,
        "test": test,
        "samples": samples.count(),
    }
