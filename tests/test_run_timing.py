"""Per-node and per-stage wall times of a run."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

from reclora_pipeline.pipeline_registry import STAGES, register_pipelines
from reclora_pipeline.run_timing import TIMINGS_FILE, RunTimingHooks, stage_of, timing_report


def test_report_sums_nodes_per_stage():
    report = timing_report(
        {"read_raw_tables": 1.0, "filter_k_core": 2.04, "train_din": 3.0, "mystery": 0.5},
        {"read_raw_tables": "ingest", "filter_k_core": "ingest", "train_din": "ctr_lens"},
    )
    assert report["stages"] == {"ingest": 3.0, "ctr_lens": 3.0, "other": 0.5}
    assert report["total_seconds"] == 6.5
    assert list(report["nodes"]) == ["read_raw_tables", "filter_k_core", "train_din", "mystery"]


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
