"""Short natural-language descriptions of items, used for embeddings and prompts."""

from __future__ import annotations

import pandas as pd

from reclora_pipeline.missing import is_missing, text_or_none


def item_title(title: object, year: object) -> str:
    """``"Title (year)"``, or just the title when the year is unknown."""
    name = text_or_none(title) or "Unknown title"
    if is_missing(year):
        return name
    return f"{name} ({int(year)})"


def describe_items(items: pd.DataFrame) -> pd.DataFrame:
    """``item_id``, ``title`` ("Name (year)") and ``description`` for every item.

    Movies: title, year and genres; books: title, year and authors.
    """

    def describe(row: pd.Series) -> str:
        text = item_title(row.title, row.year)
        authors = [] if is_missing(row.authors) else list(row.authors)
        genres = [] if is_missing(row.genres) else list(row.genres)
        if authors:
            text += f", by {', '.join(authors)}"
        if genres:
            text += f"; genres: {', '.join(genres)}"
        return text

    titles = [item_title(t, y) for t, y in zip(items.title, items.year, strict=True)]
    descriptions = [describe(row) for row in items.itertuples(index=False)]
    return pd.DataFrame(
        {"item_id": items.item_id.to_numpy(), "title": titles, "description": descriptions}
    )
