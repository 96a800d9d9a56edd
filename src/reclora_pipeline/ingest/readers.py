"""Readers for the supported rating-data formats, all producing the same three tables.

Every reader fills three temporary tables of an in-memory DuckDB connection:

- ``interactions(user_id, item_id, rating DOUBLE, timestamp BIGINT)``, ids as in the source;
- ``items(item_id, title, year INTEGER, genres VARCHAR[], authors VARCHAR[])``;
- ``users(user_id, gender, age INTEGER, occupation, zip_code)``, NULL where the source has none.

``read_dataset`` validates the files, runs the reader and returns pyarrow tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from reclora_pipeline.embedded_assets import package_folder
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.ingest.goodreads_reader import read_goodreads
from reclora_pipeline.ingest.movielens_readers import read_ml_1m, read_ml_100k, read_ml_latest
from reclora_pipeline.ingest.recbole_reader import read_recbole
from reclora_pipeline.ingest.text_files import require_folder
from reclora_pipeline.ingest.value_checks import RatingScale, parse_rating_scale

# Each format's own rating scale; ``ingest.rating_scale`` replaces it (e.g. RecBole data on 0-10).
RATING_SCALES: dict[str, RatingScale] = {
    "recbole": (0.0, 5.0),
    "ml-100k": (1.0, 5.0),
    "ml-1m": (1.0, 5.0),
    "ml-latest": (0.5, 5.0),
    "goodreads": (0.0, 5.0),  # 0 = shelved, not rated: checked, then dropped
}


@dataclass(frozen=True)
class RawTables:
    """The three normalised source tables (ids still as in the source files)."""

    interactions: pa.Table
    items: pa.Table
    users: pa.Table


def embedded_movielens_100k() -> Path:
    """The MovieLens-100K folder shipped by the installed ``recbole`` package."""
    folder = package_folder(
        "recbole", "recbole==1.2.1", "the embedded MovieLens-100K (empty ingest.path)"
    )
    return folder / "dataset_example" / "ml-100k"


READERS: dict[str, Callable[[duckdb.DuckDBPyConnection, Path, RatingScale], None]] = {
    "recbole": read_recbole,
    "ml-100k": read_ml_100k,
    "ml-1m": read_ml_1m,
    "ml-latest": read_ml_latest,
    "goodreads": read_goodreads,
}


def read_dataset(
    data_format: str,
    folder: str | Path | None,
    memory_limit: str = "4GB",
    rating_scale: object = None,
) -> RawTables:
    """Read and validate one dataset; ``folder`` None or empty means the embedded ML-100K.

    ``rating_scale`` (``ingest.rating_scale``): ``[min, max]`` of the ratings,
    None for the format's own scale (``RATING_SCALES``).
    """
    if data_format not in READERS:
        raise ParameterError(
            f"unknown ingest.format {data_format!r}; accepted values: {sorted(READERS)}"
        )
    if not folder and data_format != "recbole":
        raise ParameterError(
            f"ingest.path is empty, which selects the embedded MovieLens-100K in RecBole "
            f"format, but ingest.format is {data_format!r}: set ingest.path to your "
            f"{data_format} folder, or ingest.format to 'recbole'"
        )
    scale = parse_rating_scale(rating_scale) or RATING_SCALES[data_format]
    path = require_folder(folder) if folder else embedded_movielens_100k()
    connection = duckdb.connect(":memory:", config={"memory_limit": memory_limit})
    try:
        READERS[data_format](connection, path, scale)
        return RawTables(
            interactions=connection.table("interactions").to_arrow_table(),
            items=connection.table("items").to_arrow_table(),
            users=connection.table("users").to_arrow_table(),
        )
    finally:
        connection.close()
