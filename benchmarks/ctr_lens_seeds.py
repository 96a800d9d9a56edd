"""CTR lens quality on the embedded MovieLens-100K: test AUC / LogLoss over several seeds.

Runs ingest and item_text's embeddings in a scratch workspace, builds the features of
every sample as ``ctr_lens.build_ctr_features`` does (the lifelong sequence store and the
item tables SIM's searches read), then trains DIN, SIM, DeepFM and a logistic regression on
the full train split with the settings of conf/base/parameters_ctr_lens.yml (early stopping
on valid AUC), once per seed, and scores the test split; item popularity is the non-learned
reference. ``--set key=value`` overrides a ctr_lens setting (e.g. SIM's lifelong search:
``--set crm_retrieval=semantic --set lifelong_max_history=1000``). Prints one JSON line last
(mean and std per model).

    python benchmarks/ctr_lens_seeds.py [--seeds 0 1 2] [--models din sim deepfm logreg]
        [--set crm_retrieval=semantic ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time

import numpy as np
import torch
import yaml

from reclora_pipeline.ctr.baselines import LogisticRegressionCTR, popularity_scores
from reclora_pipeline.ctr.features import CTRFeatures, CTRVocab
from reclora_pipeline.ctr.metrics import auc, logloss
from reclora_pipeline.ctr.registry import build_ctr_model
from reclora_pipeline.ctr.sample_features import sample_features, search_tables
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.ctr.splits import SPLIT_CODES
from reclora_pipeline.ctr.training import TrainConfig, evaluate, train_ctr
from reclora_pipeline.duckdb_store import DuckDBTable, close_all, connect
from reclora_pipeline.typed_settings import parse
from reclora_pipeline.workspace import make_workspace, project_root, run_kedro

MODELS = ("din", "sim", "deepfm", "logreg")


def load_features(settings: CtrLensSettings) -> tuple[CTRVocab, dict[str, CTRFeatures]]:
    """Train / valid / test features of the embedded dataset, built in a scratch workspace
    and read through ``settings``' history view."""
    with tempfile.TemporaryDirectory(prefix="ctr_lens_seeds_") as scratch:
        workspace = make_workspace(scratch)
        for args in (
            ("run", "--pipeline", "ingest"),
            ("run", "--pipeline", "item_text", "--to-nodes", "item_text.embed_items"),
        ):
            result = run_kedro(workspace, *args, timeout=1800)
            if result.returncode != 0:
                raise SystemExit(result.stderr[-4000:])
        connection = connect(workspace / "data/03_primary/reclora.duckdb")
        vocab = CTRVocab.fit(
            connection.table("items").to_arrow_table(), connection.table("users").to_arrow_table()
        )
        features = sample_features(
            DuckDBTable(connection, "samples"), DuckDBTable(connection, "interactions"), vocab
        )
        tables = search_tables(DuckDBTable(connection, "item_embeddings"), vocab)
        view = settings.history_view(*tables)
        features = features.with_view(view)
        close_all()
    split = features.extra["split"]
    splits = {name: features.select(split == code) for name, code in SPLIT_CODES.items()}
    return vocab, splits


def ctr_lens_settings(overrides: list[str]) -> CtrLensSettings:
    """conf/base's ctr_lens settings with ``key=value`` overrides (values read as YAML)."""
    path = project_root() / "conf/base/parameters_ctr_lens.yml"
    params = yaml.safe_load(path.read_text())["ctr_lens"]
    for item in overrides:
        key, _, value = item.partition("=")
        params[key] = yaml.safe_load(value)
    return parse(CtrLensSettings, params, "ctr_lens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    settings = ctr_lens_settings(args.set)
    vocab, splits = load_features(settings)
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
                model = build_ctr_model(name, vocab, seed=seed, **settings.model_options(name))
            # The logistic regression takes the shared training settings (no overrides).
            shared = dataclasses.asdict(settings.training) | {"seed": seed, "progress": False}
            config = TrainConfig(**shared)
            if name != "logreg":
                config = dataclasses.replace(settings.train_config(name), seed=seed, progress=False)
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
    summary["settings"] = {
        key: getattr(settings, key)
        for key in ("max_history", "k_crm", "crm_retrieval", "lifelong_max_history", "similarity")
    }
    summary["torch_threads"] = torch.get_num_threads()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
