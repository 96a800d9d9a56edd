"""Wall time and memory high-water mark of every node and stage of a ``kedro run``, for
people sizing their runs."""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from reclora_pipeline.datasets.atomic_file import write_atomically

TIMINGS_FILE = Path("data") / "08_reporting" / "run_timings.json"

logger = logging.getLogger(__name__)


def stage_of(node: Any) -> str:
    """The stage a node belongs to: the first part of its namespace (each stage's pipeline
    is a modular pipeline named after it), ``other`` for a node outside any stage."""
    namespace = getattr(node, "namespace", None)
    return namespace.split(".")[0] if namespace else "other"


def peak_rss_gib() -> float:
    """The largest resident set this process, or any child it waited for (the deepspeed
    launcher's processes), has had so far, in GiB."""
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    unit = 1 if sys.platform == "darwin" else 1024
    peak = max(resource.getrusage(who).ru_maxrss
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))  # fmt: skip
    return peak * unit / 2**30


def timing_report(
    seconds_by_node: dict[str, float],
    stages: dict[str, str],
    peak_by_node: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Seconds per node (run order) and per stage, and their total; with ``peak_by_node``
    also the memory high-water mark after each node (it only grows: the node where it
    jumps is the one that needed the memory) and the run's peak."""
    per_stage: dict[str, float] = {}
    for name, seconds in seconds_by_node.items():
        stage = stages.get(name, "other")
        per_stage[stage] = per_stage.get(stage, 0.0) + seconds
    report: dict[str, Any] = {
        "nodes": {name: round(s, 1) for name, s in seconds_by_node.items()},
        "stages": {stage: round(s, 1) for stage, s in per_stage.items()},
        "total_seconds": round(sum(seconds_by_node.values()), 1),
    }
    if peak_by_node:
        report["peak_rss_gib_after_node"] = {n: round(g, 2) for n, g in peak_by_node.items()}
        report["peak_rss_gib"] = round(max(peak_by_node.values()), 2)
    return report


class RunTimingHooks:
    """Writes ``data/08_reporting/run_timings.json`` after every successful run.

    A node's time runs from loading its first input to saving its last output: the
    DuckDB nodes return lazy relations, so their work happens inside the save.
    """

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._finished: dict[str, float] = {}
        self._peak: dict[str, float] = {}
        self._stages: dict[str, str] = {}

    def _start(self, node: Any) -> None:
        self._started.setdefault(node.name, time.perf_counter())
        self._stages[node.name] = stage_of(node)

    def _finish(self, node: Any) -> None:
        self._finished[node.name] = time.perf_counter()
        self._peak[node.name] = peak_rss_gib()

    @hook_impl
    def before_pipeline_run(self, **_: Any) -> None:
        self._started, self._finished, self._peak, self._stages = {}, {}, {}, {}

    @hook_impl
    def before_dataset_loaded(self, node: Any, **_: Any) -> None:
        self._start(node)

    @hook_impl
    def before_node_run(self, node: Any, **_: Any) -> None:
        self._start(node)

    @hook_impl
    def after_node_run(self, node: Any, **_: Any) -> None:
        self._finish(node)

    @hook_impl
    def after_dataset_saved(self, node: Any, **_: Any) -> None:
        self._finish(node)

    @property
    def _seconds(self) -> dict[str, float]:
        return {name: self._finished[name] - started for name, started in self._started.items()
                if name in self._finished}  # fmt: skip

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], **_: Any) -> None:
        seconds = self._seconds
        peaks = {name: self._peak[name] for name in seconds}
        report = timing_report(seconds, self._stages, peaks)
        for stage, seconds in report["stages"].items():
            logger.info("stage %-11s %7.1f s", stage, seconds)
        target = Path(run_params.get("project_path") or ".") / TIMINGS_FILE
        text = json.dumps(report, indent=2) + "\n"
        write_atomically(target, lambda path: path.write_text(text, encoding="utf-8"))
