"""Every reader turns its format's files into the same normalised tables."""

from __future__ import annotations

import pytest

from reclora_pipeline.ingest.readers import READERS, embedded_movielens_100k, read_dataset
from tests.sources import WRITERS, add_byte_order_mark


def _source_id(data_format: str, user: int) -> object:
    return f"u{user:04x}" if data_format == "goodreads" else user


@pytest.mark.parametrize("data_format", sorted(READERS))
def test_reader_normalises_interactions_items_and_users(tmp_path, world, data_format):
    folder = WRITERS[data_format](tmp_path / data_format, world)

    tables = read_dataset(data_format, folder)

    rows = sorted(
        (str(u), str(i), r, t)
        for u, i, r, t in zip(
            *(
                tables.interactions.column(c).to_pylist()
                for c in ("user_id", "item_id", "rating", "timestamp")
            ),
            strict=True,
        )
    )
    expected = sorted(
        (str(_source_id(data_format, u)), str(i), r, t) for u, i, r, t in world.ratings
    )
    assert rows == expected
    assert tables.interactions.column_names == ["user_id", "item_id", "rating", "timestamp"]

    items = {str(row["item_id"]): row for row in tables.items.to_pylist()}
    assert set(tables.items.column_names) == {"item_id", "title", "year", "genres", "authors"}
    for item, (title, year, genres) in world.titles.items():
        row = items[str(item)]
        assert row["title"] in (title, f"{title}, The")
        assert row["year"] == year
        if data_format == "goodreads":
            assert row["authors"] == [f"Author {item}"]
        else:
            assert sorted(row["genres"]) == sorted(genres)

    users = {str(row["user_id"]): row for row in tables.users.to_pylist()}
    assert len(users) == len(world.profiles)
    if data_format in ("recbole", "ml-100k", "ml-1m"):
        gender, age, occupation, _ = world.profiles[3]
        assert (users["3"]["gender"], users["3"]["age"], users["3"]["occupation"]) == (
            gender,
            age,
            occupation,
        )


@pytest.mark.parametrize(
    ("data_format", "files"),
    [
        ("ml-latest", ("ratings.csv", "movies.csv")),
        ("recbole", ("toy.inter", "toy.item", "toy.user")),
        ("ml-100k", ("u.data",)),
        (
            "goodreads",
            (
                "goodreads_interactions_toy.json.gz",
                "goodreads_books_toy.json",
                "goodreads_book_authors_toy.json",
            ),
        ),
    ],
)
def test_utf8_byte_order_mark_is_accepted(tmp_path, world, data_format, files):
    plain = WRITERS[data_format](tmp_path / "plain", world)
    marked = WRITERS[data_format](tmp_path / "marked", world)
    for name in files:
        add_byte_order_mark(marked / name)
        assert (marked / name).read_bytes() != (plain / name).read_bytes()

    expected, found = read_dataset(data_format, plain), read_dataset(data_format, marked)

    # Row order is not part of the contract (DuckDB may return joins in any order).
    keys = {"interactions": ["user_id", "item_id", "timestamp"], "items": ["item_id"],
            "users": ["user_id"]}  # fmt: skip
    for name, columns in keys.items():
        order = [(column, "ascending") for column in columns]
        assert getattr(found, name).sort_by(order).equals(getattr(expected, name).sort_by(order))


def test_goodreads_drops_unrated_shelvings(tmp_path, world):
    world.ratings[0] = (*world.ratings[0][:2], 0.0, world.ratings[0][3])
    folder = WRITERS["goodreads"](tmp_path / "gr", world)
    assert read_dataset("goodreads", folder).interactions.num_rows == len(world.ratings) - 1


def test_embedded_movielens_is_found_without_importing_recbole():
    import sys

    folder = embedded_movielens_100k()
    assert (folder / "ml-100k.inter").is_file()
    assert "recbole" not in sys.modules


def test_unknown_format_names_the_accepted_values(tmp_path):
    with pytest.raises(ValueError, match=r"unknown ingest.format 'csv'.*'ml-1m'"):
        read_dataset("csv", tmp_path)


def test_empty_path_requires_the_embedded_format():
    with pytest.raises(ValueError, match="ingest.path is empty"):
        read_dataset("ml-1m", None)
