"""Profile the default job: `kedro run --pipeline full` in a scratch copy, then the LLM's
achieved scoring rate against its raw forward rate on the same machine and prompts.

Prints the wall time, the peak memory of the run, seconds per stage and per node and the
memory high-water mark after each node (from
data/08_reporting/run_timings.json), how the run computed (precision and threads from
the reports), and for the LLM: the prompts/s the evaluation's zero-shot node achieved
(500 test prompts, model load included) next to the best raw forward rate measured
right after on a sample of the same prompts (fp32 and bf16, 1 and 2 threads; see
llm_forward_rates.py). The last stdout line is one JSON object.

    .venv/bin/python benchmarks/full_run_profile.py                 # the default job
    .venv/bin/python benchmarks/full_run_profile.py --params few2many.n_train=16,...
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from llm_forward_rates import measure, real_prompts, workspace_model  # noqa: E402

from reclora_pipeline.compute import cpu_info  # noqa: E402
from reclora_pipeline.workspace import make_workspace, run_kedro  # noqa: E402


def read_json(workspace: Path, relative: str) -> dict:
    path = workspace / relative
    return json.loads(path.read_text()) if path.is_file() else {}


def print_table(timings: dict) -> None:
    print(f"\n{'stage':12s} {'seconds':>8s}")
    for stage, seconds in timings["stages"].items():
        print(f"{stage:12s} {seconds:8.1f}")
    # The high-water mark only grows, so the node where it jumps is the one that needed it.
    peaks = timings.get("peak_rss_gib_after_node", {})
    print(f"\n  {'node':48s} {'seconds':>8s} {'peak GiB after':>15s}")
    for node, seconds in timings["nodes"].items():
        print(f"  {node:48s} {seconds:8.1f} {peaks.get(node, float('nan')):15.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="", help="passed to kedro run --params")
    parser.add_argument("--rate-prompts", type=int, default=64, help="prompts for the raw rate")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the rates")
    parser.add_argument("--keep", action="store_true", help="keep the scratch workspace")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="reclora_profile_"))
    workspace = make_workspace(scratch / "project")
    command = ["run", "--pipeline", "full"] + (["--params", args.params] if args.params else [])
    load_before = os.getloadavg()
    started = time.perf_counter()
    result = run_kedro(workspace, *command, timeout=4 * 3600)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stdout[-3000:] + result.stderr[-5000:])
        raise SystemExit(f"kedro run failed (workspace kept at {workspace})")
    # ru_maxrss of the children: the kedro process (and any launcher it started), in KiB.
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    timings = read_json(workspace, "data/08_reporting/run_timings.json")
    metrics = read_json(workspace, "data/08_reporting/metrics.json")
    reclora = read_json(workspace, "data/07_model_output/finetune_report_reclora.json")
    print(f"kedro {' '.join(command)}: {wall:.0f} s wall, peak RSS {peak_gib:.2f} GiB")
    print_table(timings)

    n_test = metrics["models"]["zero_shot"]["n"]
    achieved = n_test / timings["nodes"]["evaluation.score_zero_shot"]
    prompts = real_prompts(workspace, args.rate_prompts)
    rates = measure(workspace_model(workspace), prompts, 16, [1, 2], args.rounds)
    raw_best = max(value for key, value in rates.items() if key.startswith("raw_"))
    print(f"\nLLM scoring: the pipeline achieved {achieved:.2f} prompts/s "
          f"({metrics['compute']['precision']}, {metrics['compute']['torch_threads']} threads); "
          f"best raw forward {raw_best:.2f} prompts/s: {achieved / raw_best:.0%}")  # fmt: skip
    for key, value in rates.items():
        print(f"  {key:28s} {value:7.2f} prompts/s")
    summary = {
        "wall_seconds": round(wall, 1),
        "peak_rss_gib": round(peak_gib, 2),
        "stages": timings["stages"],
        "nodes": timings["nodes"],
        "peak_rss_gib_after_node": timings.get("peak_rss_gib_after_node"),
        "llm_achieved_prompts_per_s": round(achieved, 3),
        "llm_raw_best_prompts_per_s": raw_best,
        "llm_rates": rates,
        "evaluation_compute": metrics["compute"],
        "finetune_compute": reclora.get("compute"),
        "padding_share_reclora": reclora.get("padding_share"),
        "auc": {name: entry["auc"] for name, entry in metrics["models"].items()},
        **cpu_info().to_dict(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
