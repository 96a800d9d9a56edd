"""Semantic retrieval's similarity step: the cache-sized chunks against the first version.

Scores every history item of every row against the row's target (``retrieval._similarities``,
what ``semantic`` retrieval spends its time on) for ML-25M-shaped random rows: 59,047 items
drawn with Zipf-like popularity (exponent 0.9, as benchmarks/ingest_scale.py generates them),
512-dim embeddings, histories of 60. The reference is the first version: one advanced-index
gather of ``[rows, L, d]`` in 128 MB chunks, then an einsum. Both run in this process, in
alternation, on the same rows; the scores must be identical. Prints rows/s of each, the
ratio, and one JSON line.

    python benchmarks/retrieval_speed.py [--rows 32768] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from reclora_pipeline.compute import cpu_info
from reclora_pipeline.item_text.retrieval import _similarities, normalised_table

ML25M_ITEMS = 59_047
# The first version's chunk: 2**25 floats (128 MB) of gathered history vectors.
REFERENCE_CHUNK_FLOATS = 2**25


def reference_similarities(
    ids: torch.Tensor, targets: torch.Tensor, item_table: torch.Tensor
) -> torch.Tensor:
    """The first version of ``_similarities``: gather, then einsum, in 128 MB chunks."""
    rows = max(1, REFERENCE_CHUNK_FLOATS // max(1, ids.shape[1] * item_table.shape[1]))
    scores = torch.empty(ids.shape, dtype=item_table.dtype)
    for start in range(0, ids.shape[0], rows):
        chunk = slice(start, start + rows)
        target = item_table[targets[chunk]]
        scores[chunk] = torch.einsum("bld,bd->bl", item_table[ids[chunk]], target)
    return scores


def best_seconds(function, *args, rounds: int) -> tuple[float, torch.Tensor]:
    """The fastest of ``rounds`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32_768)
    parser.add_argument("--history", type=int, default=60)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    table = normalised_table(rng.normal(size=(ML25M_ITEMS + 1, args.dim)), "cosine")
    # Item popularity as in benchmarks/ingest_scale.py's generator (Zipf-like, exponent 0.9):
    # popular items stay in cache, as they do on real data.
    popularity = 1.0 / np.arange(1, ML25M_ITEMS + 1) ** 0.9
    popularity /= popularity.sum()
    draw = lambda shape: torch.from_numpy(rng.choice(ML25M_ITEMS, shape, p=popularity) + 1)  # noqa: E731
    ids, targets = draw((args.rows, args.history)), draw(args.rows)
    current_s, current = best_seconds(_similarities, ids, targets, table, rounds=args.rounds)
    reference_s, reference = best_seconds(
        reference_similarities, ids, targets, table, rounds=args.rounds
    )
    result = {
        "rows": args.rows,
        "history": args.history,
        "dim": args.dim,
        "items": ML25M_ITEMS,
        "current_rows_per_s": round(args.rows / current_s),
        "reference_rows_per_s": round(args.rows / reference_s),
        "speedup": round(reference_s / current_s, 2),
        "identical": bool(torch.equal(current, reference)),
        "threads": torch.get_num_threads(),
        "cpu": cpu_info().to_dict(),
    }
    print(
        f"similarities: {result['current_rows_per_s']:,} rows/s against "
        f"{result['reference_rows_per_s']:,} (first version), {result['speedup']}x, "
        f"identical: {result['identical']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
