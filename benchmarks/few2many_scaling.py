"""Few2Many scaling: valid and test AUC of RecLoRA, vanilla LoRA and lens_readout against
n_train, with DIN and SIM on the same rows as the bars to beat.

Three steps, so that the training can run where the compute is:

``prepare`` (needs kedro; CPU): in a workspace where the default job ran through
ctr_lens, rerun few2many with ``few2many.n_train`` = the largest size and export what the
arms read to ``--inputs``: ``few2many_samples.parquet`` (the rows, their prompts and the
lens's ``user_repr``), ``crm_predictions.parquet`` and ``inputs.json``.

``run`` (finetune library only, no kedro or DuckDB; a CPU or a GPU): for each n_train,
the first n of a seeded permutation of those train rows, so every size is a uniform
random draw from the train split and the smaller draws are nested in the larger. Each arm
trains on them (early stopping on the valid rows) and scores the test rows;
lens_readout is fit on the same rows. Every model is scored on the same valid and test
rows. Prints one JSON line per (n_train, arm) and rewrites ``--out`` (JSON) after each, so
a run stopped at a time limit keeps the sizes it finished.

``report``: a markdown table and a PNG (AUC against n_train) from one or more ``run``
outputs.

    python benchmarks/few2many_scaling.py prepare --workspace W --n-train-max 8192 --inputs I
    python benchmarks/few2many_scaling.py run --inputs I --model M --n-train 256 1024 4096 \\
        --out scaling.json [--set lora.temperature=5 --set training.epochs=2]
    python benchmarks/few2many_scaling.py report scaling.json --png docs/few2many_scaling.png

``--set`` keys are under ``finetune`` (conf/base/parameters_finetune.yml), as on the
kedro command line. Settings are chosen on the valid AUC; the test AUC is reported for the
settings so chosen.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.evaluation.comparison import aligned
from reclora_pipeline.evaluation.lens_readout import fit_lens_readout
from reclora_pipeline.evaluation.metrics import paired_bootstrap_auc_difference
from reclora_pipeline.finetune.request import build_request
from reclora_pipeline.finetune.run import Subset, subset, train_arm, user_dim
from reclora_pipeline.finetune.scoring_job import (
    ScoringJob,
    ScoringRows,
    score_here,
    scoring_device,
)
from reclora_pipeline.finetune.settings import FinetuneStageSettings
from reclora_pipeline.typed_settings import parse

REPO = Path(__file__).resolve().parents[1]
SAMPLES_FILE, CRM_FILE, FACTS_FILE = (
    "few2many_samples.parquet",
    "crm_predictions.parquet",
    "inputs.json",
)
CRMS = ("din", "sim", "deepfm")
LENS_READOUT_L2 = (0.1, 1.0, 10.0, 100.0, 1000.0)  # evaluation.lens_readout_l2's default
SCORING_BATCH = 16  # evaluation.batch_size's default


# --- prepare (kedro) -----------------------------------------------------------------


def prepare(workspace: Path, n_train_max: int, inputs: Path) -> None:
    """few2many with ``n_train_max`` train rows in ``workspace``, exported to ``inputs``."""
    import duckdb  # prepare only: run must work without DuckDB

    from reclora_pipeline.workspace import make_workspace, run_kedro

    make_workspace(workspace)
    result = run_kedro(workspace, "run", "--pipeline", "few2many", "--params",
                       f"few2many.n_train={n_train_max}")  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(result.stdout[-2000:] + result.stderr[-4000:])
    inputs.mkdir(parents=True, exist_ok=True)
    database = workspace / "data" / "03_primary" / "reclora.duckdb"
    with duckdb.connect(str(database), read_only=True) as connection:
        for table, name in (("few2many_samples", SAMPLES_FILE), ("crm_predictions", CRM_FILE)):
            pq.write_table(connection.sql(f"SELECT * FROM {table}").to_arrow_table(), inputs / name)
        n_users = connection.execute("SELECT count(*) FROM users").fetchall()[0][0]
    prepared = json.loads((workspace / "data" / "06_models" / "language_model.json").read_text())
    # The prepared folder is relative to the workspace; run may start elsewhere.
    model = workspace / prepared["name_or_path"]
    model_name = str(model.resolve()) if model.is_dir() else prepared["name_or_path"]
    facts = {"n_users": int(n_users), "model": model_name, "n_train_max": n_train_max}
    (inputs / FACTS_FILE).write_text(json.dumps(facts, indent=2))
    print(json.dumps(facts))


# --- run (finetune library) -----------------------------------------------------------


def stage_settings(overrides: list[str]) -> FinetuneStageSettings:
    """conf/base's finetune parameters with ``key=value`` overrides (keys under finetune)."""
    conf = yaml.safe_load((REPO / "conf" / "base" / "parameters_finetune.yml").read_text())
    params = conf["finetune"]
    for item in overrides:
        key, _, value = item.partition("=")
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return parse(FinetuneStageSettings, params, "finetune")


def cut(rows: Subset, keep: np.ndarray | None) -> Subset:
    """``rows`` at the positions ``keep`` (all of them for None)."""
    return rows if keep is None else rows.take(keep[: len(rows)])


def score_arm(
    arm: str, adapter: Path, model: str, rows: Subset, settings: FinetuneStageSettings
) -> np.ndarray:
    """P(Yes) of the trained ``arm`` on ``rows`` (as the evaluation scores it)."""
    job = ScoringJob(model=model, max_length=settings.training.max_length, batch_size=SCORING_BATCH,
                     bf16=settings.training.bf16, bf16_key="finetune.training.bf16",
                     torch_threads=settings.torch_threads, adapter=str(adapter), arm=arm)  # fmt: skip
    return score_here(job, ScoringRows(rows.prompts, rows.user_repr, rows.user_ids),
                      scoring_device())  # fmt: skip


def paired_to(
    labels: np.ndarray, probs: np.ndarray, other: np.ndarray, users: np.ndarray
) -> dict[str, float]:
    """User-level paired bootstrap of AUC(probs) - AUC(other)."""
    diff = paired_bootstrap_auc_difference(labels, probs, other, users=users)
    return {key: round(value, 4) for key, value in diff.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train and score every (n_train, arm); the rows of the result."""
    rows = pq.read_table(args.inputs / SAMPLES_FILE)
    crm = pq.read_table(args.inputs / CRM_FILE)
    facts = json.loads((args.inputs / FACTS_FILE).read_text())
    settings = stage_settings(args.set)
    model = args.model or settings.model or facts["model"]
    # --eval-rows (a smoke test on a CPU) keeps the first rows of each subset.
    keep = np.arange(args.eval_rows) if args.eval_rows else None
    valid, test = (
        {arm: cut(subset(rows, name, arm), keep) for arm in args.arms} for name in ("valid", "test")
    )
    pool = {arm: subset(rows, "train", arm) for arm in args.arms}
    sizes = sorted(args.n_train)
    if sizes[-1] > len(next(iter(pool.values()))):
        raise SystemExit(f"--n-train {sizes[-1]} is more than the {len(pool[args.arms[0]])} "
                         "prepared train rows: prepare with a larger --n-train-max")  # fmt: skip
    order = np.random.default_rng(args.draw_seed).permutation(len(pool[args.arms[0]]))
    any_arm = args.arms[0]
    v_ids, t_ids = valid[any_arm].sample_ids, test[any_arm].sample_ids
    v_labels, t_labels = valid[any_arm].labels, test[any_arm].labels
    t_users = test[any_arm].user_ids.numpy()
    crm_test = {name: aligned(name, t_ids, crm, name) for name in CRMS if name in crm.column_names}
    result_rows = []
    for name, probs in crm_test.items():
        result_rows.append({"model": name, "n_train": None, "valid_auc":
                            round(auc(v_labels, aligned(name, v_ids, crm, name)), 4),
                            "test_auc": round(auc(t_labels, probs), 4)})  # fmt: skip
    result = {
        "model": model, "settings": args.set, "arms": args.arms, "n_train": sizes,
        "n_valid": len(v_labels), "n_test": len(t_labels),
        "n_test_users": int(np.unique(t_users).size), "draw_seed": args.draw_seed,
        "device": scoring_device(), "rows": result_rows,
    }  # fmt: skip

    def record(entry: dict[str, Any]) -> None:
        # Written after every row: a run stopped at a time limit keeps what it finished.
        result_rows.append(entry)
        args.out.write_text(json.dumps(result, indent=1))
        print(json.dumps(entry), flush=True)

    request_dim = user_dim(rows)
    scratch = Path(tempfile.mkdtemp(prefix="few2many_scaling_"))
    try:
        for n in sizes:
            chosen = order[:n]
            train = {arm: pool[arm].take(chosen) for arm in args.arms}
            readout = fit_lens_readout(train[any_arm].user_repr.numpy(), train[any_arm].labels,
                                       valid[any_arm].user_repr.numpy(), v_labels, LENS_READOUT_L2)  # fmt: skip
            readout_test = readout.predict(test[any_arm].user_repr.numpy())
            record({"model": "lens_readout", "n_train": n, "valid_auc": round(readout.valid_auc, 4),
                    "test_auc": round(auc(t_labels, readout_test), 4), "l2": readout.l2})  # fmt: skip
            for arm in args.arms:
                request = build_request(arm, settings, model, facts["n_users"], request_dim)
                folder = scratch / f"{arm}_{n}"
                started = time.perf_counter()
                report = train_arm(request, train[arm], valid[arm], folder, progress=False)
                trained_s = time.perf_counter() - started
                probs = score_arm(arm, folder, model, test[arm], settings)
                entry = {
                    "model": arm, "n_train": n, "valid_auc": round(report["best_valid_auc"], 4),
                    "test_auc": round(auc(t_labels, probs), 4),
                    "best_epoch": report["best_epoch"] + 1,
                    "valid_auc_by_epoch": [round(h["valid_auc"], 4) for h in report["history"]],
                    "train_s": round(trained_s, 1), "engine": report["engine"],
                    "minus_lens_readout": paired_to(t_labels, probs, readout_test, t_users),
                }  # fmt: skip
                for name, crm_probs in crm_test.items():
                    entry[f"minus_{name}"] = paired_to(t_labels, probs, crm_probs, t_users)
                record(entry)
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


# --- report ----------------------------------------------------------------------------


def report(paths: list[Path], png: Path | None) -> str:
    """A markdown table of every run's rows, and optionally the plot."""
    runs = [json.loads(path.read_text()) for path in paths]
    lines = ["| settings | model | n_train | valid AUC | test AUC | test − DIN [95% CI, users] |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for result in runs:
        label = " ".join(result["settings"]) or "defaults"
        for row in result["rows"]:
            diff = row.get("minus_din")
            diff_text = (f"{diff['mean_difference']:+.4f} [{diff['ci_low']:+.4f}, "
                         f"{diff['ci_high']:+.4f}]") if diff else ""  # fmt: skip
            n = row["n_train"] if row["n_train"] is not None else "all"
            lines.append(f"| {label} | {row['model']} | {n} | {row['valid_auc']:.4f} | "
                         f"{row['test_auc']:.4f} | {diff_text} |")  # fmt: skip
    if png is not None:
        plot(runs, png)
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], png: Path) -> None:
    """Test AUC against n_train (log scale): one line per model and run, CRMs as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    drawn_crms, drawn_curves = set(), set()
    for result in runs:
        label = " ".join(result["settings"]) or "defaults"
        curves: dict[str, list[tuple[int, float]]] = {}
        for row in result["rows"]:
            if row["n_train"] is None:
                if row["model"] in ("din", "sim") and row["model"] not in drawn_crms:
                    drawn_crms.add(row["model"])
                    axes.axhline(row["test_auc"], linestyle="--", linewidth=1,
                                 color="black" if row["model"] == "din" else "grey",
                                 label=f"{row['model'].upper()} (full train split)")  # fmt: skip
                continue
            curves.setdefault(row["model"], []).append((row["n_train"], row["test_auc"]))
        for name, points in curves.items():
            points.sort()
            # lens_readout and vanilla LoRA do not read the gate's settings: drawn once.
            if (name, tuple(points)) in drawn_curves:
                continue
            drawn_curves.add((name, tuple(points)))
            axes.plot(*zip(*points, strict=True), marker="o",
                      label=name if len(runs) == 1 else f"{name} ({label})")  # fmt: skip
    axes.set_xscale("log", base=2)
    axes.set_xlabel("Few2Many n_train (LLM training rows)")
    axes.set_ylabel(f"test AUC ({runs[0]['n_test']} rows, {runs[0]['n_test_users']} users)")
    axes.set_title(f"Few2Many scaling, {Path(runs[0]['model']).name}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    p = steps.add_parser("prepare", help="few2many at the largest n_train, exported (kedro)")
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--n-train-max", type=int, required=True)
    p.add_argument("--inputs", type=Path, required=True)
    r = steps.add_parser("run", help="train and score each n_train (finetune library)")
    r.add_argument("--inputs", type=Path, required=True)
    r.add_argument("--model", help="base model folder (default: the prepared workspace's)")
    r.add_argument("--n-train", type=int, nargs="+", default=[256, 1024, 4096])
    r.add_argument("--arms", nargs="+", default=["reclora", "vanilla_lora"])
    r.add_argument("--set", action="append", default=[], help="finetune key=value")
    r.add_argument("--draw-seed", type=int, default=0)
    r.add_argument("--eval-rows", type=int, help="first N valid and test rows (smoke test)")
    r.add_argument("--out", type=Path, required=True)
    s = steps.add_parser("report", help="markdown table and PNG from run outputs")
    s.add_argument("results", type=Path, nargs="+")
    s.add_argument("--png", type=Path)
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.workspace, args.n_train_max, args.inputs)
    elif args.step == "run":
        run(args)  # writes --out as it goes
    else:
        print(report(args.results, args.png))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
