"""RecBole atomic files: ``<name>.inter``, ``<name>.item`` and an optional ``<name>.user``."""

from __future__ import annotations

from pathlib import Path

import duckdb

from reclora_pipeline.ingest.errors import InputDataError
from reclora_pipeline.ingest.recbole_header import read_recbole_header
from reclora_pipeline.ingest.source_tables import NO_LIST, check_interactions, users_without_profile
from reclora_pipeline.ingest.sql import sql_identifier
from reclora_pipeline.ingest.text_files import (
    DelimitedFormat,
    check_unique,
    find_file,
    read_delimited,
)
from reclora_pipeline.ingest.value_checks import RatingScale, timestamp_rule


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
    check_interactions(connection, inter_path, "inter_raw", fields["rating"], stamp, scale, 1)
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
        users_without_profile(connection)
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
        return NO_LIST
    return f"list_filter(string_split({sql_identifier(column)}, ' '), lambda w: w <> '')"
