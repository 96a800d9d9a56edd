"""MovieLens readers: the original ML-100K and ML-1M files, and ML-25M / ml-latest CSVs."""

from __future__ import annotations

from pathlib import Path

import duckdb

from reclora_pipeline.ingest.source_tables import NO_LIST, check_interactions, users_without_profile
from reclora_pipeline.ingest.sql import sql_literal
from reclora_pipeline.ingest.text_files import (
    DelimitedFormat,
    check_unique,
    find_file,
    read_delimited,
)
from reclora_pipeline.ingest.value_checks import RatingScale, timestamp_rule

# Genre flags of the original ML-100K u.item, in column order (u.genre lists the same).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

# "Toy Story (1995)" -> title "Toy Story", year 1995 (MovieLens embeds the year in the title).
_TITLE_WITHOUT_YEAR = r"trim(regexp_replace({0}, '\s*\((\d{{4}})\)\s*$', ''))"
_YEAR_FROM_TITLE = r"TRY_CAST(nullif(regexp_extract({0}, '\((\d{{4}})\)\s*$', 1), '') AS INTEGER)"

_RATING_TYPES = {
    "user_id": "BIGINT",
    "item_id": "BIGINT",
    "rating": "DOUBLE",
    "timestamp": "BIGINT",
}
_PROFILE_TYPES = {
    "user_id": "BIGINT", "gender": "VARCHAR", "age": "INTEGER", "occupation": "VARCHAR",
    "zip_code": "VARCHAR",
}  # fmt: skip


def _read_headerless_ratings(
    connection: duckdb.DuckDBPyConnection,
    folder: Path,
    name: str,
    delimiter: str,
    encoding: str,
    scale: RatingScale,
) -> None:
    """``interactions`` from a MovieLens ratings file: user, item, rating, timestamp."""
    path = find_file(folder, (name,), "ratings")
    layout = DelimitedFormat(_RATING_TYPES, delimiter, header=False, encoding=encoding)
    read_delimited(connection, path, layout, "interactions")
    stamp = timestamp_rule("timestamp")
    check_interactions(connection, path, "interactions", "rating", stamp, scale, 0)
    check_unique(connection, path, "interactions", ("user_id", "item_id", "timestamp"), 0)


def _read_headerless_users(
    connection: duckdb.DuckDBPyConnection,
    folder: Path,
    name: str,
    field_order: tuple[str, ...],
    delimiter: str,
) -> None:
    """``users`` from a MovieLens user file whose fields come in ``field_order``."""
    path = find_file(folder, (name,), "users")
    layout = DelimitedFormat(
        {field: _PROFILE_TYPES[field] for field in field_order},
        delimiter, header=False, encoding="latin-1", required=("user_id",),
    )  # fmt: skip
    read_delimited(connection, path, layout, "user_raw")
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE users AS "
        "SELECT user_id, gender, age, occupation, zip_code FROM user_raw"
    )


def read_ml_100k(connection: duckdb.DuckDBPyConnection, folder: Path, scale: RatingScale) -> None:
    """Original ML-100K: ``u.data`` (tab), ``u.item`` and ``u.user`` (``|``, latin-1)."""
    _read_headerless_ratings(connection, folder, "u.data", "\t", "utf-8", scale)

    item_path = find_file(folder, ("u.item",), "movies")
    flags = {f"genre_{i}": "INTEGER" for i in range(len(ML100K_GENRES))}
    layout = DelimitedFormat(
        {"item_id": "BIGINT", "title": "VARCHAR", "release_date": "VARCHAR",
         "video_release_date": "VARCHAR", "imdb_url": "VARCHAR", **flags},
        "|", header=False, encoding="latin-1", required=("item_id", "title"),
    )  # fmt: skip
    read_delimited(connection, item_path, layout, "item_raw")
    names = ", ".join(sql_literal(g) for g in ML100K_GENRES)
    flag_list = ", ".join(f"genre_{i}" for i in range(len(ML100K_GENRES)))
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE items AS SELECT item_id, "
        f"{_TITLE_WITHOUT_YEAR.format('title')} AS title, "
        f"coalesce({_YEAR_FROM_TITLE.format('title')}, "
        "TRY_CAST(right(release_date, 4) AS INTEGER)) AS year, "
        f"list_filter([{names}], lambda g, i: [{flag_list}][i] = 1) AS genres, "
        f"{NO_LIST} AS authors FROM item_raw"
    )

    _read_headerless_users(
        connection, folder, "u.user", ("user_id", "age", "gender", "occupation", "zip_code"), "|"
    )


def read_ml_1m(connection: duckdb.DuckDBPyConnection, folder: Path, scale: RatingScale) -> None:
    """ML-1M: ``ratings.dat``, ``movies.dat``, ``users.dat``, ``::`` separated, latin-1."""
    _read_headerless_ratings(connection, folder, "ratings.dat", "::", "latin-1", scale)

    movies = find_file(folder, ("movies.dat",), "movies")
    layout = DelimitedFormat(
        {"item_id": "BIGINT", "title": "VARCHAR", "genres": "VARCHAR"},
        "::", header=False, encoding="latin-1", required=("item_id", "title"),
    )  # fmt: skip
    read_delimited(connection, movies, layout, "item_raw")
    _movie_items_from_titles(connection)

    _read_headerless_users(
        connection,
        folder,
        "users.dat",
        ("user_id", "gender", "age", "occupation", "zip_code"),
        "::",
    )


def _movie_items_from_titles(connection: duckdb.DuckDBPyConnection) -> None:
    """items from ``item_raw(item_id, title "Name (year)", genres "A|B")``."""
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE items AS SELECT item_id, "
        f"{_TITLE_WITHOUT_YEAR.format('title')} AS title, {_YEAR_FROM_TITLE.format('title')} AS year, "
        "list_filter(string_split(coalesce(genres, ''), '|'), "
        "lambda g: g <> '' AND g <> '(no genres listed)') AS genres, "
        f"{NO_LIST} AS authors FROM item_raw"
    )


def read_ml_latest(connection: duckdb.DuckDBPyConnection, folder: Path, scale: RatingScale) -> None:
    """ML-25M / ml-latest / ml-latest-small: ``ratings.csv`` and ``movies.csv`` with headers."""
    ratings = find_file(folder, ("ratings.csv",), "ratings")
    layout = DelimitedFormat(
        {"userId": "BIGINT", "movieId": "BIGINT", "rating": "DOUBLE", "timestamp": "BIGINT"},
        ",", header=True, quote='"',
    )  # fmt: skip
    read_delimited(connection, ratings, layout, "inter_raw")
    stamp = timestamp_rule("timestamp")
    check_interactions(connection, ratings, "inter_raw", "rating", stamp, scale, 1)
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE interactions AS SELECT userId AS user_id, "
        "movieId AS item_id, rating, timestamp FROM inter_raw"
    )
    connection.execute("DROP TABLE inter_raw")
    check_unique(connection, ratings, "interactions", ("user_id", "item_id", "timestamp"), 1)

    movies = find_file(folder, ("movies.csv",), "movies")
    layout = DelimitedFormat(
        {"movieId": "BIGINT", "title": "VARCHAR", "genres": "VARCHAR"},
        ",", header=True, quote='"', required=("movieId", "title"),
    )  # fmt: skip
    read_delimited(connection, movies, layout, "movies_raw")
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE item_raw AS "
        "SELECT movieId AS item_id, title, genres FROM movies_raw"
    )
    _movie_items_from_titles(connection)
    users_without_profile(connection)
