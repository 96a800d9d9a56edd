"""Test AUC of the LLM arms over several fine-tuning seeds: mean and standard deviation.

In a workspace where the default job ran (benchmarks/full_run_profile.py --keep leaves
one), each seed retrains the arms (`finetune.training.seed`), rescores them on the same
500 test rows and reruns the comparison. The zero-shot model, the CRMs and lens_readout do
not depend on the seed; they are scored once and listed for reference.

    python benchmarks/llm_seeds.py --workspace W --seeds 0 1 2 \\
        --arms reclora vanilla_lora tallrec reclora_no_few2many

Prints one line per seed, a table (mean ± sd over seeds, with the user-level bootstrap
interval of each seed's paired difference to DIN), and a last stdout line of JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from reclora_pipeline.finetune.settings import MAIN_ARMS
from reclora_pipeline.workspace import make_workspace, run_kedro


def nodes_for(arms: list[str]) -> list[str]:
    """The nodes one seed reruns: what trains and scores ``arms``, then the comparison."""
    lens = ["ctr_lens.write_lens_recipe", "finetune.see_through_few_shot_lens"]
    lens = lens if "reclora_no_few2many" in arms else []
    return [
        *lens,
        *(f"finetune.finetune_{arm}" for arm in arms),
        *(f"evaluation.score_{arm}" for arm in arms),
        "evaluation.compare_models",
    ]


def run_seed(workspace: Path, seed: int, arms: list[str], extra_params: str) -> dict:
    """metrics.json after retraining and rescoring ``arms`` with fine-tuning seed ``seed``."""
    ablations = "+".join(arm for arm in arms if arm not in MAIN_ARMS)
    params = [f"finetune.training.seed={seed}", extra_params]
    if ablations:
        params.append(f"finetune.ablations={ablations}")
    command = ["run", "--nodes", ",".join(nodes_for(arms))]
    result = run_kedro(workspace, *command, "--params", ",".join(filter(None, params)))
    if result.returncode != 0:
        print(result.stdout[-2000:] + result.stderr[-4000:])
        raise SystemExit(f"seed {seed} failed (workspace {workspace})")
    return json.loads((workspace / "data" / "08_reporting" / "metrics.json").read_text())


def summarize(per_seed: dict[int, dict], arms: list[str]) -> dict[str, dict[str, float]]:
    """Mean and sd of each arm's test AUC over seeds (the paired differences are printed
    per seed by :func:`print_table`)."""
    summary = {}
    for arm in arms:
        aucs = [metrics["models"][arm]["auc"] for metrics in per_seed.values()]
        summary[arm] = {
            "mean_auc": round(statistics.mean(aucs), 4),
            "sd_auc": round(statistics.stdev(aucs), 4) if len(aucs) > 1 else 0.0,
            "aucs": [round(value, 4) for value in aucs],
        }
    return summary


def print_table(per_seed: dict[int, dict], summary: dict, reference: dict[str, float]) -> None:
    print(f"\n{'model':22s} {'test AUC mean ± sd':>20s}  per seed")
    for arm, entry in summary.items():
        print(f"{arm:22s} {entry['mean_auc']:.4f} ± {entry['sd_auc']:.4f}    {entry['aucs']}")
    for name, value in reference.items():
        print(f"{name:22s} {value:.4f} (does not depend on the seed)")
    for seed, metrics in per_seed.items():
        for pair, entry in metrics["comparisons"].items():
            if pair.startswith("reclora - "):
                low, high = entry.get("ci_low"), entry.get("ci_high")
                print(
                    f"  seed {seed}: {pair:32s} {entry['mean_difference']:+.4f} [{low:+.4f}, {high:+.4f}]"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=["reclora", "vanilla_lora"])
    parser.add_argument("--params", default="", help="more --params for every seed")
    args = parser.parse_args()
    # The workspace gets this checkout's conf/base (its data stays), so new datasets resolve.
    make_workspace(args.workspace)
    per_seed, started = {}, time.perf_counter()
    for seed in args.seeds:
        per_seed[seed] = run_seed(args.workspace, seed, args.arms, args.params)
        aucs = {arm: round(per_seed[seed]["models"][arm]["auc"], 4) for arm in args.arms}
        print(json.dumps({"seed": seed, "auc": aucs}), flush=True)
    last = per_seed[args.seeds[-1]]["models"]
    reference = {name: round(entry["auc"], 4) for name, entry in last.items()
                 if name not in args.arms and "auc" in entry}  # fmt: skip
    summary = summarize(per_seed, args.arms)
    print_table(per_seed, summary, reference)
    comparisons = {seed: m["comparisons"] for seed, m in per_seed.items()}
    print(json.dumps({"seeds": args.seeds, "params": args.params, "arms": summary,
                      "reference": reference, "comparisons": comparisons,
                      "seconds": round(time.perf_counter() - started, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
