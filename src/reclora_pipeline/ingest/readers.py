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

from reclora_pipeline.duckdb_store import fetch_row
from reclora_pipeline.embedded_assets import package_folder
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.ingest.errors import InputDataError
from reclora_pipeline.ingest.recbole_header import read_recbole_header
from reclora_pipeline.ingest.sql import sql_identifier, sql_literal
from reclora_pipeline.ingest.text_files import (
    DelimitedFormat,
    check_unique,
    find_file,
    read_delimited,
    read_json_lines,
    require_folder,
)
from reclora_pipeline.ingest.value_checks import (
    RatingScale,
    ValueRule,
    check_values,
    parse_rating_scale,
    rating_rules,
    timestamp_rule,
)

# Genre flags of the original ML-100K u.item, in column order (u.genre lists the same).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

# "Toy Story (1995)" -> title "Toy Story", year 1995 (MovieLens embeds the year in the title).
_TITLE_WITHOUT_YEAR = r"trim(regexp_replace({0}, '\s*\((\d{{4}})\)\s*$', ''))"
_YEAR_FROM_TITLE = r"TRY_CAST(nullif(regexp_extract({0}, '\((\d{{4}})\)\s*$', 1), '') AS INTEGER)"
_NO_LIST = "CAST([] AS VARCHAR[])"
_GOODREADS_DATE = "'%a %b %d %H:%M:%S %z %Y'"

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


def _users_without_profile(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE users AS SELECT DISTINCT user_id, NULL::VARCHAR AS gender, "
        "NULL::INTEGER AS age, NULL::VARCHAR AS occupation, NULL::VARCHAR AS zip_code "
        "FROM interactions ORDER BY user_id"  # DISTINCT alone returns rows in any order
    )


def _check_interactions(
    connection: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    rating: str,
    time_rule: ValueRule,
    scale: RatingScale,
    header_lines: int,
) -> None:
    """Ratings inside ``scale`` (not NaN) and ``time_rule``, in the file's column names."""
    rules = [*rating_rules(rating, scale), time_rule]
    check_values(connection, path, sql_identifier(table), rules, header_lines)


def _pick(fields: dict[str, str], candidates: tuple[str, ...]) -> str | None:
    return next((fields[name] for name in candidates if name in fields), None)


def read_recbole(connection: duckdb.DuckDBPyConnection, folder: Path, scale: RatingScale) -> None:
    """RecBole atomic files: ``<name>.inter`` (+ ``.item``, optional ``.user``), tab separated."""
    inter_path = find_file(folder, ("*.inter",), "RecBole interactions")
    fields = read_recbole_header(inter_path)
    wanted = {"user_id": "BIGINT", "item_id": "BIGINT", "rating": "DOUBLE", "timestamp": "DOUBLE"}
    missing = [name for name in wanted if name not in fields]
    if missing:
        raise InputDataError(
            inter_path, f"missing column(s) {missing}", line=1,
            expected="user_id, item_id, rating and timestamp fields",
        )  # fmt: skip
    layout = DelimitedFormat({fields[n]: t for n, t in wanted.items()}, "\t", header=True)
    read_delimited(connection, inter_path, layout, "inter_raw")
    # RecBole timestamps are float fields; checked to fit the BIGINT they become.
    stamp = timestamp_rule(fields["timestamp"], floating=True)
    _check_interactions(connection, inter_path, "inter_raw", fields["rating"], stamp, scale, 1)
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE interactions AS SELECT "
        + ", ".join(
            f"{sql_identifier(fields[name])}::"
            f"{'BIGINT' if name == 'timestamp' else wanted[name]} AS {name}"
            for name in wanted
        )
        + " FROM inter_raw"
    )
    check_unique(connection, inter_path, "interactions", ("user_id", "item_id", "timestamp"), 1)

    item_path = find_file(folder, ("*.item",), "RecBole item features")
    item_fields = read_recbole_header(item_path)
    title = _pick(item_fields, ("movie_title", "title", "book_title"))
    if "item_id" not in item_fields or title is None:
        raise InputDataError(
            item_path, "missing item_id or title field", line=1,
            expected="item_id and one of movie_title / title / book_title",
        )  # fmt: skip
    year = _pick(item_fields, ("release_year", "year", "publication_year"))
    genres = _pick(item_fields, ("class", "genre", "genres"))
    authors = _pick(item_fields, ("author", "authors", "book_author"))
    used = [item_fields["item_id"], title] + [c for c in (year, genres, authors) if c]
    columns = {name: ("BIGINT" if name == item_fields["item_id"] else "VARCHAR") for name in used}
    layout = DelimitedFormat(columns, "\t", header=True, required=(item_fields["item_id"],))
    read_delimited(connection, item_path, layout, "item_raw")
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE items AS SELECT "
        f"{sql_identifier(item_fields['item_id'])} AS item_id, {sql_identifier(title)} AS title, "
        + (f"TRY_CAST({sql_identifier(year)} AS INTEGER)" if year else "NULL::INTEGER")
        + f" AS year, {_space_separated_list(genres)} AS genres, "
        + f"{_space_separated_list(authors)} AS authors FROM item_raw"
    )

    user_files = sorted(folder.glob("*.user"))
    if not user_files:
        _users_without_profile(connection)
        return
    user_fields = read_recbole_header(user_files[0])
    if "user_id" not in user_fields:
        raise InputDataError(user_files[0], "missing user_id field", line=1, expected="user_id")
    profile = {
        "gender": "VARCHAR",
        "age": "INTEGER",
        "occupation": "VARCHAR",
        "zip_code": "VARCHAR",
    }
    present = {user_fields[n]: t for n, t in profile.items() if n in user_fields}
    layout = DelimitedFormat(
        {user_fields["user_id"]: "BIGINT", **present}, "\t", header=True,
        required=(user_fields["user_id"],),
    )  # fmt: skip
    read_delimited(connection, user_files[0], layout, "user_raw")
    select = ", ".join(
        f"{sql_identifier(user_fields[n])} AS {n}" if n in user_fields else f"NULL::{t} AS {n}"
        for n, t in profile.items()
    )
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE users AS SELECT "
        f"{sql_identifier(user_fields['user_id'])} AS user_id, {select} FROM user_raw"
    )


def _space_separated_list(column: str | None) -> str:
    """SQL for a RecBole ``token_seq`` column as a list of words (empty without the column)."""
    if column is None:
        return _NO_LIST
    return f"list_filter(string_split({sql_identifier(column)}, ' '), lambda w: w <> '')"


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
    _check_interactions(connection, path, "interactions", "rating", stamp, scale, 0)
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
        f"{_NO_LIST} AS authors FROM item_raw"
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
        f"{_NO_LIST} AS authors FROM item_raw"
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
    _check_interactions(connection, ratings, "inter_raw", "rating", stamp, scale, 1)
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
    _users_without_profile(connection)


def read_goodreads(connection: duckdb.DuckDBPyConnection, folder: Path, scale: RatingScale) -> None:
    """UCSD GoodReads: interactions and books as JSON lines (plain or .gz).

    Rating 0 means "shelved, not rated" and is dropped. ``date_added`` gives the
    time. Author names come from ``goodreads_book_authors*.json[.gz]`` when that
    file is present, otherwise the author ids are kept.
    """
    inter_path = find_file(
        folder, ("goodreads_interactions*.json.gz", "goodreads_interactions*.json"),
        "GoodReads interactions",
    )  # fmt: skip
    columns = {
        "user_id": "VARCHAR",
        "book_id": "VARCHAR",
        "rating": "DOUBLE",
        "date_added": "VARCHAR",
    }
    read_json_lines(connection, inter_path, columns, "inter_raw")
    bad = fetch_row(
        connection,
        "SELECT n, date_added FROM (SELECT row_number() OVER () AS n, date_added FROM inter_raw) "
        f"WHERE try_strptime(date_added, {_GOODREADS_DATE}) IS NULL ORDER BY n LIMIT 1",
    )
    if bad:
        raise InputDataError(
            inter_path, f"date_added {bad[1]!r} is not a GoodReads date", line=int(bad[0]),
            column="date_added", expected="e.g. 'Thu Dec 05 10:44:25 -0800 2013'",
        )  # fmt: skip
    # Checked before the rating-0 rows are dropped, so their line numbers are the file's.
    before_1970 = ValueRule(
        "date_added", f"epoch(strptime({{v}}, {_GOODREADS_DATE})) < 0", "is before 1970",
        "a date from 1970-01-01 on",
    )  # fmt: skip
    _check_interactions(connection, inter_path, "inter_raw", "rating", before_1970, scale, 0)
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE interactions AS SELECT user_id, book_id AS item_id, rating, "
        f"epoch(strptime(date_added, {_GOODREADS_DATE}))::BIGINT AS timestamp "
        "FROM inter_raw WHERE rating > 0"
    )
    check_unique(connection, inter_path, "interactions", ("user_id", "item_id", "timestamp"), 0)

    books_path = find_file(
        folder, ("goodreads_books*.json.gz", "goodreads_books*.json"), "GoodReads books"
    )
    read_json_lines(
        connection, books_path,
        {"book_id": "VARCHAR", "title": "VARCHAR", "publication_year": "VARCHAR",
         "authors": "STRUCT(author_id VARCHAR, role VARCHAR)[]"},
        "books_raw",
    )  # fmt: skip
    author_files = sorted(folder.glob("goodreads_book_authors*.json*"))
    if author_files:
        read_json_lines(
            connection, author_files[0], {"author_id": "VARCHAR", "name": "VARCHAR"}, "author_raw"
        )
    else:
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE author_raw (author_id VARCHAR, name VARCHAR)"
        )
    # Author names in the book's order; an author without a name keeps its id.
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE book_authors AS "
        "SELECT u.book_id, list(coalesce(n.name, u.author.author_id) ORDER BY u.position) AS authors "
        "FROM (SELECT book_id, unnest(authors) AS author, generate_subscripts(authors, 1) AS position "
        "FROM books_raw) u "
        "LEFT JOIN (SELECT author_id, any_value(name) AS name FROM author_raw GROUP BY 1) n "
        "ON n.author_id = u.author.author_id GROUP BY u.book_id"
    )
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE items AS SELECT b.book_id AS item_id, b.title, "
        "TRY_CAST(nullif(b.publication_year, '') AS INTEGER) AS year, "
        f"{_NO_LIST} AS genres, coalesce(a.authors, {_NO_LIST}) AS authors "
        "FROM books_raw b LEFT JOIN book_authors a USING (book_id)"
    )
    _users_without_profile(connection)


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
