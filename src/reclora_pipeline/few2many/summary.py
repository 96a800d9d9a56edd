"""What the few2many subsets hold: rows, positives, users and prompt lengths."""

from __future__ import annotations

from reclora_pipeline.duckdb_store import DuckDBTable


def subset_summary(few2many_samples: DuckDBTable) -> dict[str, dict[str, int | float]]:
    """Per subset: samples, positives, distinct users, median and longest prompt (tokens)."""
    stats = few2many_samples.connection.sql(
        "SELECT subset, count(*), sum(label), count(DISTINCT user_id), "
        "median(prompt_tokens), max(prompt_tokens) "
        f"FROM {few2many_samples.sql_name} GROUP BY subset ORDER BY subset"
    ).fetchall()
    return {
        subset: {
            "samples": int(n),
            "positives": int(positives),
            "users": int(n_users),
            "median_prompt_tokens": float(median),
            "max_prompt_tokens": int(longest),
        }
        for subset, n, positives, n_users, median, longest in stats
    }
