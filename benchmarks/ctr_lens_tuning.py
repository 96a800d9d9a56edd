"""Valid-split tuning of the CTR lens on the embedded MovieLens-100K.

Trains each CRM under a small grid of learning rates and weight decays (AdamW's
decoupled decay is the embedding regulariser) with early stopping on valid AUC,
and prints the best valid AUC and the epoch it came at per setting. Only the valid
split is read: the test split is left for `ctr_lens_seeds.py`.

    python benchmarks/ctr_lens_tuning.py [--models din sim deepfm] [--max-epochs 10]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import torch
from ctr_lens_seeds import load_features

from reclora_pipeline.ctr.registry import build_ctr_model
from reclora_pipeline.ctr.training import TrainConfig, train_ctr

GRID = {
    "din": {"lr": [1e-3, 3e-3], "weight_decay": [1e-4]},
    "sim": {"lr": [1e-3, 3e-3], "weight_decay": [1e-4]},
    "deepfm": {"lr": [3e-4, 1e-3], "weight_decay": [1e-4, 1e-1]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(GRID))
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    vocab, splits = load_features()
    rows = []
    for name in args.models:
        grid = GRID[name]
        for lr, weight_decay in itertools.product(grid["lr"], grid["weight_decay"]):
            started = time.perf_counter()
            model = build_ctr_model(name, vocab, seed=args.seed)
            config = TrainConfig(
                lr=lr,
                weight_decay=weight_decay,
                batch_size=512,
                max_epochs=args.max_epochs,
                patience=args.patience,
                seed=args.seed,
                progress=False,
            )
            trained = train_ctr(model, splits["train"], splits["valid"], config)
            row = {
                "model": name,
                "lr": lr,
                "weight_decay": weight_decay,
                "best_valid_auc": round(trained.best_valid_auc, 4),
                "best_epoch": trained.best_epoch,
                "epochs": trained.epochs,
                "valid_auc_per_epoch": [round(h["valid_auc"], 4) for h in trained.history],
                "train_s": round(time.perf_counter() - started, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"results": rows, "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
