"""Counts and prompt-length statistics of the item_text outputs."""

from __future__ import annotations

from reclora_pipeline.duckdb_store import DuckDBTable, fetch_row


def item_text_summary(item_embeddings: DuckDBTable, prompts: DuckDBTable) -> dict[str, int]:
    """Items embedded and their width; samples and prompt tokens (median, p95, max)."""
    embedded = fetch_row(
        item_embeddings.connection,
        f"SELECT count(*), max(len(embedding)) FROM {item_embeddings.sql_name}",
    )
    stats = fetch_row(
        prompts.connection,
        "SELECT count(*), quantile_disc(prompt_tokens, 0.5), quantile_disc(prompt_tokens, 0.95), "
        f"max(prompt_tokens) FROM {prompts.sql_name}",
    )
    return {
        "items_embedded": int(embedded[0]),
        "embedding_dim": int(embedded[1]),
        "samples": int(stats[0]),
        "median_prompt_tokens": int(stats[1]),
        "p95_prompt_tokens": int(stats[2]),
        "max_prompt_tokens": int(stats[3]),
    }
