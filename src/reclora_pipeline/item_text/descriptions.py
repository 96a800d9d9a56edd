"""Short natural-language descriptions of items, used for embeddings and prompts."""

from __future__ import annotations

import pandas as pd


def item_title(title: object, year: object) -> str:
    """``"Title (year)"``, or just the title when the year is unknown."""
    name = str(title) if isinstance(title, str) and title else "Unknown title"
    if year is None or pd.isna(year):
        return name
    return f"{name} ({int(year)})"


def describe_items(items: pd.DataFrame) -> pd.DataFrame:
    """``item_id``, ``title`` ("Name (year)") and ``description`` for every item.

    Movies: title, year and genres; books: title, year and authors.
    """

    def describe(row: pd.Series) -> str:
        text = item_title(row.title, row.year)
        authors = list(row.authors) if row.authors is not None else []
        genres = list(row.genres) if row.genres is not None else []
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
