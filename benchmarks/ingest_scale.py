"""Ingest at ML-25M scale: wall time and peak RSS of ``kedro run --pipeline ingest``.

Generates (once, cached) a synthetic ML-25M-shaped ``ratings.csv``/``movies.csv``
with long-tailed item popularity and per-user activity, then runs the ingest
pipeline on it in a scratch workspace (format ``ml-latest``) and prints one JSON
line with the figures. Target on a 2-core / 24 GiB machine: <= 300 s, <= 8 GiB.

    python benchmarks/ingest_scale.py [--ratings 25000095] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from reclora_pipeline.workspace import make_workspace, project_root, run_kedro

ML25M_USERS = 162_541
ML25M_ITEMS = 59_047
ML25M_RATINGS = 25_000_095
GENRES = ("Action", "Comedy", "Drama", "Romance", "Thriller", "Sci-Fi", "Horror", "Children")


def user_activity(rng: np.random.Generator, users: int, ratings: int) -> np.ndarray:
    """Ratings per user: log-normal (long tail), at least 20 each as in ML-25M, summing to ``ratings``."""
    raw = rng.lognormal(mean=0.0, sigma=1.2, size=users)
    counts = 20 + np.floor(raw / raw.sum() * (ratings - 20 * users)).astype(np.int64)
    counts[: ratings - counts.sum()] += 1  # hand out the rounding remainder
    return counts


def write_ratings(path: Path, users: int, items: int, ratings: int, seed: int) -> None:
    """Write ratings.csv in chunks of users (Zipf-like item popularity, increasing timestamps)."""
    rng = np.random.default_rng(seed)
    counts = user_activity(rng, users, ratings)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.9
    cdf = np.cumsum(popularity / popularity.sum())
    item_ids = rng.permutation(items) + 1
    stars = np.arange(1, 11) / 2
    star_p = np.array([1, 3, 2, 7, 5, 20, 13, 27, 8, 14], dtype=float)
    star_p /= star_p.sum()
    start = 789_652_009  # 1995-01-09, the first ML-25M timestamp
    span = 1_574_327_703 - start
    with pacsv.CSVWriter(
        path,
        pa.schema(
            [
                ("userId", pa.int64()),
                ("movieId", pa.int64()),
                ("rating", pa.float64()),
                ("timestamp", pa.int64()),
            ]
        ),
    ) as writer:
        for first in range(0, users, 20_000):
            chunk = counts[first : first + 20_000]
            n = int(chunk.sum())
            user = np.repeat(np.arange(first + 1, first + 1 + len(chunk)), chunk)
            item = item_ids[np.minimum(np.searchsorted(cdf, rng.random(n)), items - 1)]
            # Each user is active in a random window; timestamps increase within it.
            begin = np.repeat(start + rng.integers(0, span, len(chunk)), chunk)
            gaps = 1 + rng.exponential(3_600.0, n).astype(np.int64)  # strictly increasing per user
            offsets = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[np.cumsum(chunk) - chunk], chunk)
            table = pa.table(
                {
                    "userId": user,
                    "movieId": item,
                    "rating": rng.choice(stars, n, p=star_p),
                    "timestamp": begin + offsets,
                }
            )
            writer.write_table(table)


def write_movies(path: Path, items: int, seed: int) -> None:
    """Write movies.csv, with quoted titles containing commas as in the real file."""
    rng = np.random.default_rng(seed + 1)
    years = rng.integers(1920, 2020, items)
    titles = [
        f"Movie {i}, The ({year})" if i % 7 == 0 else f"Movie {i} ({year})"
        for i, year in zip(range(1, items + 1), years, strict=True)
    ]
    genres = [
        "|".join(rng.choice(GENRES, size=rng.integers(1, 4), replace=False)) for _ in range(items)
    ]
    table = pa.table({"movieId": np.arange(1, items + 1), "title": titles, "genres": genres})
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


def ensure_dataset(folder: Path, ratings: int, seed: int) -> Path:
    """Generate the synthetic dataset into ``folder`` unless it is already there."""
    scale = ratings / ML25M_RATINGS
    users, items = max(100, int(ML25M_USERS * scale)), max(50, int(ML25M_ITEMS * scale))
    marker = folder / f".complete-{ratings}-{seed}"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    write_ratings(folder / "ratings.csv", users, items, ratings, seed)
    write_movies(folder / "movies.csv", items, seed)
    marker.touch()
    print(f"generated {ratings:,} ratings in {time.perf_counter() - started:.0f} s into {folder}")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=ML25M_RATINGS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-dir", type=Path, default=project_root() / "data" / "01_raw" / "synthetic_ml25m"
    )
    args = parser.parse_args()
    folder = ensure_dataset(args.data_dir, args.ratings, args.seed)
    with tempfile.TemporaryDirectory(prefix="ingest_scale_") as scratch:
        workspace = make_workspace(scratch)
        started = time.perf_counter()
        result = run_kedro(
            workspace, "run", "--pipeline", "ingest",
            "--params", f"ingest.format=ml-latest,ingest.path={folder.resolve()}",
        )  # fmt: skip
        wall = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-6000:])
            raise SystemExit(f"ingest failed with exit code {result.returncode}")
        summary = json.loads(
            (workspace / "data" / "08_reporting" / "ingest_summary.json").read_text()
        )
        db_bytes = (workspace / "data" / "03_primary" / "reclora.duckdb").stat().st_size
    peak_rss_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # KiB -> GiB
    print(
        json.dumps(
            {
                "ratings_in_file": args.ratings,
                "wall_s": round(wall, 1),
                "peak_rss_gib": round(peak_rss_gib, 2),
                "duckdb_file_gib": round(db_bytes / 1024**3, 2),
                "summary": summary,
                "target_met": wall <= 300 and peak_rss_gib <= 8,
            }
        )
    )


if __name__ == "__main__":
    main()
