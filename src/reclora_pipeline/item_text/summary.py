"""Counts of the item_text outputs."""

from __future__ import annotations

from reclora_pipeline.duckdb_store import DuckDBTable, fetch_row


def item_text_summary(
    item_embeddings: DuckDBTable, retrieved_histories: DuckDBTable
) -> dict[str, int]:
    """Items embedded and their width; samples whose histories were retrieved."""
    embedded = fetch_row(
        item_embeddings.connection,
        f"SELECT count(*), max(len(embedding)) FROM {item_embeddings.sql_name}",
    )
    return {
        "items_embedded": int(embedded[0]),
        "embedding_dim": int(embedded[1]),
        "samples": retrieved_histories.count(),
    }
