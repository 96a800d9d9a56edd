"""UCSD GoodReads: interactions, books and (optionally) authors as JSON lines."""

from __future__ import annotations

from pathlib import Path

import duckdb

from reclora_pipeline.duckdb_store import fetch_row
from reclora_pipeline.ingest.errors import InputDataError
from reclora_pipeline.ingest.source_tables import NO_LIST, check_interactions, users_without_profile
from reclora_pipeline.ingest.text_files import check_unique, find_file, read_json_lines
from reclora_pipeline.ingest.value_checks import RatingScale, ValueRule

_GOODREADS_DATE = "'%a %b %d %H:%M:%S %z %Y'"


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
    check_interactions(connection, inter_path, "inter_raw", "rating", before_1970, scale, 0)
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
        f"{NO_LIST} AS genres, coalesce(a.authors, {NO_LIST}) AS authors "
        "FROM books_raw b LEFT JOIN book_authors a USING (book_id)"
    )
    users_without_profile(connection)
