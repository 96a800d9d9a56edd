"""Valid-split tuning of the LLM arms: one `kedro run` per setting, in a prepared workspace.

Each setting retrains the arms (finetune nodes only; with --from-few2many the Few2Many
selection and the zero-shot valid pass first, for settings such as few2many.n_train) and
reads their best valid AUC from finetune_report_<arm>.json. Only the valid split is read:
test AUCs are for the scaling and seed benchmarks, once settings are chosen.

    python benchmarks/reclora_tuning.py --workspace W \\
        --grid finetune.lora.temperature=1,5,10 finetune.training.lr=1e-3,3e-3

W is a workspace (benchmarks/full_run_profile.py --keep leaves one) where the default job
ran. Every setting starts from the defaults: the grid is the product of the --grid axes.
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from reclora_pipeline.finetune.settings import MAIN_ARMS
from reclora_pipeline.workspace import make_workspace, run_kedro


def settings_grid(axes: list[str]) -> list[dict[str, str]]:
    """The product of ``key=v1,v2`` axes as a list of {key: value} settings."""
    keys, values = [], []
    for axis in axes:
        key, _, choices = axis.partition("=")
        if not choices:
            raise SystemExit(f"--grid {axis!r}: expected key=value1,value2")
        keys.append(key)
        values.append(choices.split(","))
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def run_setting(workspace: Path, setting: dict[str, str], arms: list[str], from_few2many: bool):
    """Retrain ``arms`` under ``setting``; (seconds, {arm: report})."""
    params = ",".join(f"{key}={value}" for key, value in setting.items())
    trains = [f"finetune.finetune_{arm}" for arm in arms]
    if from_few2many:
        nodes = ["--from-nodes", "few2many.select_llm_samples", "--to-nodes", ",".join(trains)]
    else:
        nodes = ["--nodes", ",".join(trains)]
    ablations = [arm for arm in arms if arm not in MAIN_ARMS]
    if ablations:
        params = ",".join(filter(None, [params, f"finetune.ablations={'+'.join(ablations)}"]))
    started = time.perf_counter()
    result = run_kedro(workspace, "run", *nodes, *(["--params", params] if params else []))
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stdout[-2000:] + result.stderr[-4000:])
        raise SystemExit(f"setting {setting} failed")
    folder = workspace / "data" / "07_model_output"
    return seconds, {
        a: json.loads((folder / f"finetune_report_{a}.json").read_text()) for a in arms
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--grid", nargs="*", default=[], help="key=v1,v2 axes (--params keys)")
    parser.add_argument("--arms", nargs="+", default=["reclora"])
    parser.add_argument("--from-few2many", action="store_true", help="rerun few2many first")
    args = parser.parse_args()
    # The workspace gets this checkout's conf/base (its data stays), so new datasets resolve.
    make_workspace(args.workspace)
    rows = []
    for setting in settings_grid(args.grid) or [{}]:
        seconds, reports = run_setting(args.workspace, setting, args.arms, args.from_few2many)
        for arm, report in reports.items():
            history = [round(h["valid_auc"], 4) for h in report["history"]]
            row = {**setting, "arm": arm, "best_valid_auc": round(report["best_valid_auc"], 4),
                   "best_epoch": report["best_epoch"] + 1, "valid_auc_by_epoch": history,
                   "zero_shot_valid_auc": round(report["zero_shot_valid_auc"], 4),
                   "seconds": round(seconds, 1)}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"workspace": str(args.workspace), "rows": rows}))


if __name__ == "__main__":
    main()
