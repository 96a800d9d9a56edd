"""CTR lens quality on the embedded MovieLens-100K: test AUC / LogLoss over several seeds.

Runs ingest and the retrieval part of item_text in a scratch workspace, then trains
DIN, SIM, DeepFM and a logistic regression on the full train split with the
training settings of conf/base/parameters_ctr_lens.yml (early stopping on valid
AUC), once per seed, and scores the test split; item popularity is the
non-learned reference. Prints one JSON line last (mean and std per model).

    python benchmarks/ctr_lens_seeds.py [--seeds 0 1 2] [--models din sim deepfm logreg]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
import yaml

from reclora_pipeline.ctr.baselines import LogisticRegressionCTR, popularity_scores
from reclora_pipeline.ctr.features import CTRVocab, build_features
from reclora_pipeline.ctr.metrics import auc, logloss
from reclora_pipeline.ctr.registry import build_ctr_model
from reclora_pipeline.ctr.training import TrainConfig, evaluate, train_ctr
from reclora_pipeline.duckdb_store import close_all, connect
from reclora_pipeline.workspace import make_workspace, project_root, run_kedro

MODELS = ("din", "sim", "deepfm", "logreg")


def load_features():
    """Train / valid / test features of the embedded dataset, built in a scratch workspace."""
    with tempfile.TemporaryDirectory(prefix="ctr_lens_seeds_") as scratch:
        workspace = make_workspace(scratch)
        for args in (
            ("run", "--pipeline", "ingest"),
            ("run", "--pipeline", "item_text", "--to-nodes", "item_text.retrieve_histories"),
        ):
            result = run_kedro(workspace, *args, timeout=1800)
            if result.returncode != 0:
                raise SystemExit(result.stderr[-4000:])
        connection = connect(workspace / "data/03_primary/reclora.duckdb")
        vocab = CTRVocab.fit(
            connection.table("items").to_arrow_table(), connection.table("users").to_arrow_table()
        )
        long_history = connection.sql(
            "SELECT sample_id, crm_history_item_ids, crm_history_ratings FROM retrieved_histories"
        ).to_arrow_table()
        splits = {
            split: build_features(
                connection.sql(
                    f"SELECT * FROM samples WHERE split = '{split}' ORDER BY sample_id"
                ).to_arrow_table(),
                vocab,
                long_history=long_history,
            )
            for split in ("train", "valid", "test")
        }
        close_all()
    return vocab, splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    args = parser.parse_args()
    settings = yaml.safe_load((project_root() / "conf/base/parameters_ctr_lens.yml").read_text())[
        "ctr_lens"
    ]
    vocab, splits = load_features()
    test_labels = splits["test"].label.numpy()
    popularity = popularity_scores(splits["train"], splits["test"])
    results: dict[str, list[dict[str, float]]] = {name: [] for name in args.models}
    for seed in args.seeds:
        for name in args.models:
            started = time.perf_counter()
            if name == "logreg":
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    model = LogisticRegressionCTR(vocab)
            else:
                model = build_ctr_model(name, vocab, seed=seed)
            config = TrainConfig(**settings["training"], seed=seed, progress=False)
            trained = train_ctr(model, splits["train"], splits["valid"], config)
            metrics = evaluate(model, splits["test"])
            record = {
                "seed": seed,
                "valid_auc": trained.best_valid_auc,
                "test_auc": metrics["auc"],
                "test_logloss": metrics["logloss"],
                "epochs": trained.epochs,
                "train_s": time.perf_counter() - started,
            }
            results[name].append(record)
            print(name, json.dumps(record), flush=True)
    summary = {
        name: {
            "test_auc_mean": float(np.mean([r["test_auc"] for r in runs])),
            "test_auc_std": float(np.std([r["test_auc"] for r in runs], ddof=1))
            if len(runs) > 1
            else 0.0,
            "test_logloss_mean": float(np.mean([r["test_logloss"] for r in runs])),
            "epochs": [r["epochs"] for r in runs],
        }
        for name, runs in results.items()
    }
    summary["popularity"] = {
        "test_auc_mean": auc(test_labels, popularity),
        "test_auc_std": 0.0,
        "test_logloss_mean": logloss(test_labels, popularity),
        "epochs": [],
    }
    summary["n_test"] = len(test_labels)
    summary["seeds"] = args.seeds
    summary["torch_threads"] = torch.get_num_threads()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
