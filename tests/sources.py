"""Small rating datasets written in every supported source format, for the tests."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

GENRES = ("Action", "Comedy", "Drama", "Sci-Fi")


@dataclass
class World:
    """Ground truth: (user, item, rating, timestamp) rows plus item titles and user profiles."""

    ratings: list[tuple[int, int, float, int]]
    titles: dict[int, tuple[str, int, list[str]]]
    profiles: dict[int, tuple[str, int, str, str]] = field(default_factory=dict)


def small_world(users: int = 8, items: int = 12, per_user: int = 9) -> World:
    """A deterministic dataset where every user rates ``per_user`` items.

    Every user rates two items in the same second, to exercise timestamp ties.
    """
    ratings = []
    for user in range(1, users + 1):
        for position in range(per_user):
            item = (user * 5 + position * 7) % items + 1
            rating = float((user + position) % 5 + 1)
            timestamp = (
                1_000_000
                + user * 13
                + position * 100
                - (1 if position == per_user - 1 else 0) * 100
            )
            ratings.append((user, item, rating, timestamp))
    titles = {
        item: (f"Movie {item}", 1990 + item, [GENRES[item % 4], GENRES[(item + 1) % 4]])
        for item in range(1, items + 1)
    }
    profiles = {
        user: (
            "M" if user % 2 else "F",
            18 + user,
            "engineer" if user % 2 else "artist",
            f"{10000 + user}",
        )
        for user in range(1, users + 1)
    }
    return World(ratings, titles, profiles)


def write_recbole(folder: Path, world: World) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{u}\t{i}\t{r:g}\t{t}" for u, i, r, t in world.ratings]
    (folder / "toy.inter").write_text("\n".join(lines) + "\n")
    lines = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    lines += [
        f"{i}\t{title}\t{year}\t{' '.join(g)}" for i, (title, year, g) in world.titles.items()
    ]
    (folder / "toy.item").write_text("\n".join(lines) + "\n")
    lines = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
    lines += [f"{u}\t{a}\t{g}\t{o}\t{z}" for u, (g, a, o, z) in world.profiles.items()]
    (folder / "toy.user").write_text("\n".join(lines) + "\n")
    return folder


def write_ml_100k(folder: Path, world: World) -> Path:
    from reclora_pipeline.ingest.movielens_readers import ML100K_GENRES

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(
        "".join(f"{u}\t{i}\t{r:g}\t{t}\n" for u, i, r, t in world.ratings)
    )
    rows = []
    for item, (title, year, genres) in world.titles.items():
        flags = "|".join("1" if name in genres else "0" for name in ML100K_GENRES)
        rows.append(f"{item}|{title} ({year})|01-Jan-{year}||http://example.org/{item}|{flags}\n")
    (folder / "u.item").write_bytes("".join(rows).encode("latin-1"))
    (folder / "u.user").write_text(
        "".join(f"{u}|{a}|{g}|{o}|{z}\n" for u, (g, a, o, z) in world.profiles.items())
    )
    return folder


def write_ml_1m(folder: Path, world: World) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text(
        "".join(f"{u}::{i}::{r:g}::{t}\n" for u, i, r, t in world.ratings)
    )
    (folder / "movies.dat").write_bytes(
        "".join(
            f"{i}::{title} ({year})::{'|'.join(g)}\n"
            for i, (title, year, g) in world.titles.items()
        ).encode("latin-1")
    )
    (folder / "users.dat").write_text(
        "".join(f"{u}::{g}::{a}::{o}::{z}\n" for u, (g, a, o, z) in world.profiles.items())
    )
    return folder


def write_ml_latest(folder: Path, world: World) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        + "".join(f"{u},{i},{r:.1f},{t}\n" for u, i, r, t in world.ratings)
    )
    # Titles with a comma are quoted, as in the real files.
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        + "".join(
            f'{i},"{title}, The ({year})",{"|".join(g)}\n'
            for i, (title, year, g) in world.titles.items()
        )
    )
    return folder


def write_goodreads(folder: Path, world: World) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "goodreads_interactions_toy.json.gz", "wt") as stream:
        for u, i, r, t in world.ratings:
            date = datetime.fromtimestamp(t, tz=UTC).strftime("%a %b %d %H:%M:%S +0000 %Y")
            record = {
                "user_id": f"u{u:04x}",
                "book_id": str(i),
                "rating": int(r),
                "date_added": date,
                "is_read": True,
            }
            stream.write(json.dumps(record) + "\n")
    with (folder / "goodreads_books_toy.json").open("w") as stream:
        for i, (title, year, _) in world.titles.items():
            record = {
                "book_id": str(i),
                "title": title,
                "publication_year": str(year),
                "authors": [{"author_id": str(100 + i), "role": ""}],
            }
            stream.write(json.dumps(record) + "\n")
    with (folder / "goodreads_book_authors_toy.json").open("w") as stream:
        for i in world.titles:
            stream.write(json.dumps({"author_id": str(100 + i), "name": f"Author {i}"}) + "\n")
    return folder


WRITERS = {
    "recbole": write_recbole,
    "ml-100k": write_ml_100k,
    "ml-1m": write_ml_1m,
    "ml-latest": write_ml_latest,
    "goodreads": write_goodreads,
}


def _read_text(path: Path) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            return stream.read()
    return path.read_text(encoding="utf-8")


def _write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding=encoding) as stream:
            stream.write(text)
    else:
        path.write_text(text, encoding=encoding)


def replace_line(path: Path, line_number: int, text: str) -> None:
    """Replace line ``line_number`` (1-based) of a text file, plain or .gz."""
    lines = _read_text(path).splitlines()
    lines[line_number - 1] = text
    _write_text(path, "\n".join(lines) + "\n")


def add_byte_order_mark(path: Path) -> None:
    """Start a UTF-8 text file (plain or .gz) with a byte order mark, as Windows editors do."""
    _write_text(path, _read_text(path), encoding="utf-8-sig")
