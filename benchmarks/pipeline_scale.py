"""ML-25M-scale runs of the first four stages: wall time and peak memory of each.

Generates (once, cached per size and seed) a synthetic ML-25M-shaped dataset with
benchmarks/ingest_scale.py, then runs ``ingest``, ``item_text``, ``ctr_lens`` and
``few2many`` in a scratch workspace, one ``kedro run --pipeline <stage>`` process per
stage, so that each stage's own peak RSS is known (``ru_maxrss`` of the reaped
process, and the largest resident memory of the stage's process tree polled every
0.5 s, which also covers a stage this script killed). Per stage it prints wall time,
peak RSS and rows/s (ingest: ratings in the file; later stages: samples). For
ctr_lens also the CRM training throughput per trained CRM: the optimizer steps taken,
the ``train_<crm>`` node's seconds (from data/08_reporting/run_timings.json) and the
seconds one full epoch over the train split would take at that rate. The node time
includes building the model and scoring valid and test, so that extrapolation is an
upper bound.

Targets (issue): at 25M ratings the pipeline completes through few2many with peak RSS
<= 8 GiB on a 24 GiB, 2-core machine, and at 5M with peak RSS <= 4 GiB; item_text at 25M
takes under 15 minutes. ``targets`` in the JSON says met / not met for the sizes they
are stated for (>= 20M ratings; 4M-6M ratings) and null otherwise.

A memory guard kills a stage's process group when its tree's resident memory passes
--rss-limit-gib (default 20: the machine has 23 GiB and no swap, so this keeps the OOM
killer away from everything else); the stage is then recorded as failed.

``ctr_lens.training.max_steps_per_epoch`` (--crm-steps, default 50) is a benchmark
knob: it caps the CRM optimizer steps per epoch so that ctr_lens finishes in minutes
at 25M; the throughput figures above extrapolate from the capped steps.
``ctr_lens.training.max_eval_rows`` (--crm-eval-rows, default 100,000) is the other one:
each CRM scores at most that many valid rows (early stopping, every epoch) and test rows
(metrics), a fixed random subset; at 25M each split has 2.4M rows, and scoring them with
each of the three CRMs takes longer than the rest of the stage.

    .venv/bin/python benchmarks/pipeline_scale.py                      # 5M ratings
    .venv/bin/python benchmarks/pipeline_scale.py --ratings 25000095   # ML-25M scale
    .venv/bin/python benchmarks/pipeline_scale.py --ratings 200000 --stages ingest item_text \\
        --workspace /tmp/ws --params-extra item_text.embed_batch_size=64

The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_scale import ML25M_RATINGS, ensure_dataset  # noqa: E402

from reclora_pipeline.compute import cpu_info  # noqa: E402
from reclora_pipeline.workspace import (  # noqa: E402
    kedro_environment,
    make_workspace,
    project_root,
)

STAGES = ("ingest", "item_text", "ctr_lens", "few2many")
CRMS = ("din", "sim", "deepfm")
POLL_SECONDS = 0.5
LOG_TAIL_LINES = 40
KIB_PER_GIB = 2**20
SUMMARY_FILE = Path("data") / "08_reporting" / "ingest_summary.json"
TIMINGS_FILE = Path("data") / "08_reporting" / "run_timings.json"
DATABASE_FILE = Path("data") / "03_primary" / "reclora.duckdb"
# Peak-RSS targets by dataset size: (smallest ratings, largest ratings, GiB).
PEAK_TARGETS = ((20_000_000, math.inf, 8.0), (4_000_000, 6_000_000, 4.0))
ITEM_TEXT_TARGET = (20_000_000, 900.0)  # (smallest ratings, seconds)


# --- the stage process and its memory -------------------------------------------------


def parent_pids() -> dict[int, int]:
    """pid -> parent pid of every process now in /proc."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # gone since the scan
            continue
        # The command name may hold spaces and parentheses; the fields after its last ")"
        # are state, ppid, ...
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def resident_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 for a process that is gone or a zombie)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_resident_kib(root: int) -> int:
    """Resident memory of ``root`` and all its descendants, in KiB."""
    children: dict[int, list[int]] = {}
    for pid, parent in parent_pids().items():
        children.setdefault(parent, []).append(pid)
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += resident_kib(pid)
        pending.extend(children.get(pid, ()))
    return total


class MemoryGuard(threading.Thread):
    """Polls a stage's process tree; kills its process group past ``limit_kib``."""

    def __init__(self, pid: int, limit_kib: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.limit_kib = pid, limit_kib
        self.peak_kib, self.killed = 0, False
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(POLL_SECONDS):
            rss = tree_resident_kib(self.pid)
            self.peak_kib = max(self.peak_kib, rss)
            if rss > self.limit_kib:
                with self._lock:
                    # Once stop() has run the pid has been reaped and may be reused.
                    if not self._stopped.is_set():
                        self.killed = True
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(self.pid, signal.SIGKILL)
                return

    def stop(self) -> None:
        """Stop polling (the stage process has been reaped)."""
        with self._lock:
            self._stopped.set()
        self.join()


def run_stage(
    workspace: Path, stage: str, params: str, log_path: Path, limit_gib: float
) -> dict[str, Any]:
    """``kedro run --pipeline <stage>`` in its own session, output to ``log_path``; its
    wall time, exit code, peak RSS (from wait4) and polled peak of its process tree."""
    kedro = Path(sys.executable).with_name("kedro")
    command = [str(kedro), "run", "--pipeline", stage, "--params", params]
    with log_path.open("w") as log:
        started = time.perf_counter()
        # A new session makes the stage the leader of its own process group, so the guard
        # can kill it together with any workers it started.
        process = subprocess.Popen(
            command,
            cwd=workspace,
            env=kedro_environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        guard = MemoryGuard(process.pid, int(limit_gib * KIB_PER_GIB))
        guard.start()
        # wait4 rather than Popen.wait: its rusage is this stage's alone (ru_maxrss: the
        # largest of the process and the children it reaped, in KiB on Linux).
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        guard.stop()
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return {
        "exit_code": process.returncode,
        "killed": guard.killed,
        "wall_s": round(wall, 1),
        "peak_rss_gib": round(usage.ru_maxrss / KIB_PER_GIB, 3),
        "polled_peak_rss_gib": round(guard.peak_kib / KIB_PER_GIB, 3),
    }


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file."""
    with path.open(errors="replace") as log:
        return "".join(deque(log, maxlen=lines))


# --- what the stages wrote -------------------------------------------------------------


def read_json(path: Path) -> dict[str, Any]:
    """A JSON report, or {} when the stage did not write it."""
    return json.loads(path.read_text()) if path.is_file() else {}


def stage_timings(workspace: Path, since: float) -> dict[str, Any]:
    """run_timings.json if the stage that started at ``since`` (epoch seconds) wrote it;
    {} otherwise (each kedro run overwrites it, and a failed run leaves the last one's)."""
    path = workspace / TIMINGS_FILE
    return read_json(path) if path.is_file() and path.stat().st_mtime >= since else {}


def parse_params(params: str) -> dict[str, str]:
    """key -> value of a ``--params`` string (only to look settings up; kedro parses it)."""
    pairs = (item.split("=", 1) for item in params.split(",") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def crm_batch_size(workspace: Path, name: str, params: dict[str, str]) -> int:
    """The training batch size of CRM ``name``: --params, then the per-model override,
    then the shared setting in the workspace's parameters_ctr_lens.yml (default 512)."""
    for key in (f"ctr_lens.models.{name}.training.batch_size", "ctr_lens.training.batch_size"):
        if key in params:
            return int(params[key])
    conf = workspace / "conf" / "base" / "parameters_ctr_lens.yml"
    settings = (yaml.safe_load(conf.read_text()) or {}).get("ctr_lens", {})
    model = ((settings.get("models") or {}).get(name) or {}).get("training") or {}
    return int(model.get("batch_size") or settings.get("training", {}).get("batch_size") or 512)


def train_sample_count(workspace: Path) -> int | None:
    """Samples in the train split, from the workspace's DuckDB file. Only call this while
    no stage runs: a read-only connection cannot share the file with a writer."""
    import duckdb  # here: only ctr_lens's figures need it

    path = workspace / DATABASE_FILE
    if not path.is_file():
        return None
    with duckdb.connect(str(path), read_only=True) as connection:
        row = connection.execute("SELECT count(*) FROM samples WHERE split = 'train'").fetchone()
    return int(row[0])


def crm_throughput(
    workspace: Path, nodes: dict[str, float], params: str, crm_epochs: int, crm_steps: int
) -> dict[str, dict[str, Any]]:
    """Per trained CRM: optimizer steps, its train node's seconds (``nodes``: ctr_lens's
    seconds per node), and the seconds a full epoch over the train split would take at that
    rate (an upper bound: the node also builds the model and scores valid and test)."""
    train_samples = train_sample_count(workspace)
    overrides = parse_params(params)
    figures: dict[str, dict[str, Any]] = {}
    for name in CRMS:
        seconds = nodes.get(f"ctr_lens.train_{name}", nodes.get(f"train_{name}"))
        if seconds is None:
            continue
        batch = crm_batch_size(workspace, name, overrides)
        full_epoch_steps = math.ceil(train_samples / batch) if train_samples else None
        per_epoch = min(crm_steps, full_epoch_steps) if full_epoch_steps else crm_steps
        # Early stopping may end training before max_epochs; the metrics say how many ran.
        metrics = read_json(workspace / "data" / "07_model_output" / f"ctr_metrics_{name}.json")
        epochs = int(metrics.get("epochs", crm_epochs))
        steps = epochs * per_epoch
        entry: dict[str, Any] = {
            "batch_size": batch,
            "epochs": epochs,
            "steps": steps,
            "node_s": seconds,
            "steps_per_s": round(steps / seconds, 2) if seconds else None,
        }
        if full_epoch_steps and seconds:
            entry["full_epoch_steps"] = full_epoch_steps
            entry["full_epoch_s_upper_bound"] = round(seconds / steps * full_epoch_steps, 1)
        figures[name] = entry
    return figures


# --- the run ---------------------------------------------------------------------------


def stage_params(dataset: Path, args: argparse.Namespace) -> str:
    """The one ``--params`` string every stage gets."""
    params = [
        "ingest.format=ml-latest",
        f"ingest.path={dataset.resolve()}",
        f"ctr_lens.training.max_epochs={args.crm_epochs}",
        f"ctr_lens.training.max_steps_per_epoch={args.crm_steps}",
        f"ctr_lens.training.max_eval_rows={args.crm_eval_rows}",
        f"item_text.embedder={args.embedder}",
    ]
    if args.embedder == "sentence":
        # all-MiniLM-L6-v2 gives 384 dims, below the default pca_dim of 512.
        params.append("item_text.pca_dim=384")
    if args.params_extra:
        params.append(args.params_extra)
    return ",".join(params)


def stage_rows(stage: str, ratings: int, summary: dict[str, Any]) -> int | None:
    """Rows a stage processed: ratings in the file for ingest, samples afterwards."""
    return ratings if stage == "ingest" else summary.get("samples")


def targets(ratings: int, per_stage: dict[str, Any], failed: dict | None) -> dict[str, Any]:
    """The issue's targets that apply at this size, each with met / not met."""
    peak = max((figures["peak_rss_gib"] for figures in per_stage.values()), default=None)
    completed = failed is None and all(stage in per_stage for stage in STAGES)
    result: dict[str, Any] = {"peak_rss": None, "item_text_s": None}
    for smallest, largest, limit in PEAK_TARGETS:
        if smallest <= ratings <= largest:
            result["peak_rss"] = {
                "limit_gib": limit,
                "through_few2many": completed,
                "met": completed and peak is not None and peak <= limit,
            }
    item_text = per_stage.get("item_text")
    if ratings >= ITEM_TEXT_TARGET[0]:
        wall = item_text["wall_s"] if item_text and not item_text.get("failed") else None
        result["item_text_s"] = {
            "limit_s": ITEM_TEXT_TARGET[1],
            "met": wall is not None and wall < ITEM_TEXT_TARGET[1],
        }
    return result


def describe(stage: str, figures: dict[str, Any]) -> str:
    """One human-readable line for a finished (or failed) stage."""
    rate = figures.get("rows_per_s")
    line = (
        f"{stage:10s} {figures['wall_s']:8.1f} s  peak RSS {figures['peak_rss_gib']:6.2f} GiB "
        f"(polled {figures['polled_peak_rss_gib']:.2f})"
    )
    if rate is not None:
        line += f"  {figures['rows']:,} rows, {rate:,.0f} rows/s"
    for name, crm in figures.get("crm", {}).items():
        line += (
            f"\n  {name:7s} {crm['steps']} steps in {crm['node_s']:.1f} s"
            f" -> full epoch <= {crm.get('full_epoch_s_upper_bound', float('nan')):.0f} s"
        )
    if figures.get("failed"):
        line += f"  FAILED: {figures['failed']}"
    return line


def run_stages(
    workspace: Path, log_dir: Path, params: str, args: argparse.Namespace
) -> tuple[list[str], dict[str, Any], dict[str, str] | None]:
    """Run the chosen stages in order, one process each; stop at the first failure."""
    completed: list[str] = []
    per_stage: dict[str, Any] = {}
    for stage in args.stages:
        log_path = log_dir / f"{stage}.log"
        print(f"{stage}: running (log {log_path})", flush=True)
        started = time.time()
        figures = run_stage(workspace, stage, params, log_path, args.rss_limit_gib)
        reason = None
        if figures["killed"]:
            reason = f"rss over limit ({args.rss_limit_gib} GiB)"
        elif figures["exit_code"] != 0:
            reason = f"exit code {figures['exit_code']}"
        summary = read_json(workspace / SUMMARY_FILE)
        rows = stage_rows(stage, args.ratings, summary)
        figures["rows"] = rows
        # A rate over part of the work would flatter a failed stage.
        ok = reason is None and rows
        figures["rows_per_s"] = round(rows / figures["wall_s"], 1) if ok else None
        if stage == "item_text":
            figures["items"] = summary.get("items")
        # Where the stage's time went; only a run that completed writes it.
        timings = stage_timings(workspace, started)
        nodes = timings.get("nodes", {})
        if nodes:
            figures["nodes_s"] = nodes
            # The process's high-water mark after each node: the first node that raises it
            # is where the stage's peak comes from.
            figures["peak_rss_gib_after_node"] = timings.get("peak_rss_gib_after_node", {})
        if stage == "ctr_lens" and reason is None:
            figures["crm"] = crm_throughput(
                workspace, nodes, params, args.crm_epochs, args.crm_steps
            )
        if reason:
            figures["failed"] = reason
        per_stage[stage] = figures
        print(describe(stage, figures), flush=True)
        if reason:
            print(f"--- last lines of {log_path} ---\n{log_tail(log_path)}", file=sys.stderr)
            return completed, per_stage, {"stage": stage, "reason": reason}
        completed.append(stage)
    return completed, per_stage, None


def stage_list(names: list[str]) -> list[str]:
    """The stages asked for, checked to be known, distinct and in pipeline order."""
    unknown = [name for name in names if name not in STAGES]
    if unknown:
        raise SystemExit(f"unknown stage(s) {unknown}; choose from {list(STAGES)}")
    if names != sorted(set(names), key=STAGES.index):
        raise SystemExit(f"stages must be distinct and in the order {list(STAGES)}")
    return names


def parse_args() -> argparse.Namespace:
    """The command line, with --stages checked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=5_000_000, help=f"ML-25M: {ML25M_RATINGS}")
    parser.add_argument("--seed", type=int, default=0, help="of the synthetic dataset")
    parser.add_argument("--data-dir", type=Path, help="dataset folder (default per size/seed)")
    parser.add_argument("--workspace", type=Path, help="keep the workspace here (default: temp)")
    parser.add_argument("--log-dir", type=Path, help="stage logs (default: <workspace>/logs)")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), help="in pipeline order")
    parser.add_argument("--crm-epochs", type=int, default=1)
    parser.add_argument("--crm-steps", type=int, default=50, help="CRM steps per epoch (cap)")
    parser.add_argument(
        "--crm-eval-rows", type=int, default=100_000, help="valid/test rows a CRM scores (cap)"
    )
    parser.add_argument("--embedder", default="llm", help="item_text.embedder: llm | sentence")
    parser.add_argument("--rss-limit-gib", type=float, default=20.0)
    parser.add_argument("--params-extra", default="", help="appended to --params")
    args = parser.parse_args()
    args.stages = stage_list(args.stages)
    return args


def default_data_dir(ratings: int, seed: int) -> Path:
    """One folder per size and seed: ensure_dataset rewrites ratings.csv in place, so two
    sizes sharing a folder would each find the other's file under their own marker."""
    suffix = f"_seed{seed}" if seed else ""
    return project_root() / "data" / "01_raw" / f"synthetic_ml25m_{ratings}{suffix}"


def benchmark(workspace: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Generate the dataset if needed, run the stages; the JSON summary."""
    dataset = ensure_dataset(
        args.data_dir or default_data_dir(args.ratings, args.seed), args.ratings, args.seed
    )
    workspace = make_workspace(workspace)
    log_dir = args.log_dir or workspace / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    params = stage_params(dataset, args)
    completed, per_stage, failed = run_stages(workspace, log_dir, params, args)
    return {
        "ratings": args.ratings,
        "stages": completed,
        "peak_rss_gib": max((f["peak_rss_gib"] for f in per_stage.values()), default=None),
        "per_stage": per_stage,
        "failed": failed,
        "targets": targets(args.ratings, per_stage, failed),
        "cpu": cpu_info().to_dict(),
        "cores": len(os.sched_getaffinity(0)),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": params,
        "dataset": str(dataset.resolve()),
    }


def main() -> None:
    args = parse_args()
    if args.workspace:
        result = benchmark(args.workspace, args)
    else:
        with tempfile.TemporaryDirectory(prefix="pipeline_scale_") as scratch:
            result = benchmark(Path(scratch), args)
    print(json.dumps(result))
    if result["failed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
