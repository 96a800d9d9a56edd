"""Per-node and per-stage wall times of a run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from types import SimpleNamespace

from reclora_pipeline.pipeline_registry import STAGES, register_pipelines
from reclora_pipeline.run_timing import (
    TIMINGS_FILE,
    RunTimingHooks,
    stage_of,
    timing_report,
)


def test_report_sums_nodes_per_stage():
    report = timing_report(
        {"read_raw_tables": 1.0, "filter_k_core": 2.04, "train_din": 3.0, "mystery": 0.5},
        {"read_raw_tables": "ingest", "filter_k_core": "ingest", "train_din": "ctr_lens"},
    )
    assert report["stages"] == {"ingest": 3.0, "ctr_lens": 3.0, "other": 0.5}
    assert report["total_seconds"] == 6.5
    assert list(report["nodes"]) == ["read_raw_tables", "filter_k_core", "train_din", "mystery"]
    assert "peak_rss_gib" not in report


def test_report_names_the_memory_high_water_mark_after_each_node():
    report = timing_report(
        {"read_raw_tables": 1.0, "train_din": 2.0},
        {"read_raw_tables": "ingest", "train_din": "ctr_lens"},
        {"read_raw_tables": 0.5, "train_din": 1.234},
    )
    assert report["peak_rss_gib_after_node"] == {"read_raw_tables": 0.5, "train_din": 1.23}
    assert report["peak_rss_gib"] == 1.23


def test_peak_rss_counts_what_a_process_and_its_children_touch_in_gib():
    # A fresh interpreter whose child touches 1 GiB more than the interpreter's own mark;
    # the parent sees it once it has waited for the child. Linux hands a process the RSS
    # high-water mark of the process that started it (at fork and exec), so "before" can
    # already be as large as the test session: the child's size is set above it.
    script = """
import subprocess, sys
from reclora_pipeline.run_timing import peak_rss_gib
before = peak_rss_gib()
size = int((before + 1.0) * 2**30)
child = f"b = bytearray({size}); b[::4096] = b'x' * len(b[::4096])"
subprocess.run([sys.executable, "-c", child], check=True)
print(before, size / 2**30, peak_rss_gib())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    before, touched, after = map(float, done.stdout.split())
    assert before < touched <= after < touched + 0.5


def test_every_node_of_full_has_its_stage_as_namespace():
    pipelines = register_pipelines()
    for stage in STAGES:
        assert {stage_of(node) for node in pipelines[stage].nodes} == {stage}
        assert all(node.name.startswith(f"{stage}.") for node in pipelines[stage].nodes)
    assert {stage_of(node) for node in pipelines["full"].nodes} == set(STAGES)
    assert stage_of(SimpleNamespace(name="loose", namespace=None)) == "other"


def test_hook_writes_the_timings_file(tmp_path):
    hooks = RunTimingHooks()
    hooks.before_pipeline_run()
    for stage, name in (("ingest", "read_raw_tables"), ("few2many", "select_llm_samples")):
        node = SimpleNamespace(name=f"{stage}.{name}", namespace=stage)
        hooks.before_dataset_loaded(node=node)
        hooks.before_node_run(node=node)
        hooks.after_node_run(node=node)
        # Lazy DuckDB relations do their work while being saved, after the node ran.
        time.sleep(0.05)
        hooks.after_dataset_saved(node=node)
    hooks.after_pipeline_run(run_params={"project_path": str(tmp_path)})
    report = json.loads((tmp_path / TIMINGS_FILE).read_text())
    assert set(report["stages"]) == {"ingest", "few2many"}
    assert report["nodes"]["ingest.read_raw_tables"] >= 0.05
    assert set(report["peak_rss_gib_after_node"]) == set(report["nodes"])
    assert report["peak_rss_gib"] > 0
