"""`kedro viz run` serves the whole RecLoRA flow: every stage's nodes and datasets.

Starts the real Kedro-Viz server on a free port in a scratch copy of the
project (so nothing is written into the checkout) and reads its REST API.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reclora_pipeline.pipeline_registry import STAGES, register_pipelines
from reclora_pipeline.workspace import (
    free_viz_port,
    make_workspace,
    start_kedro_viz,
)

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT_S = 90.0
# Kedro-Viz 12.5 serves one registered pipeline's graph at /api/pipelines/<id>
# (kedro_viz/api/rest/router.py); /api/main is the --pipeline one.
GRAPH_ENDPOINT = "/api/pipelines/full"

EXPECTED_TASKS = {
    "ingest": ["read_raw_tables"],
    "item_text": ["retrieve_histories"],
    "ctr_lens": ["train_din", "train_sim"],
    "few2many": ["select_llm_samples"],
    "finetune": ["finetune_reclora", "finetune_vanilla_lora"],
    "evaluation": ["score_zero_shot", "score_reclora", "compare_models"],
}
EXPECTED_DATASETS = [
    "raw_interactions", "samples", "retrieved_histories", "few2many_samples", "metrics",
]  # fmt: skip


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(process: subprocess.Popen) -> None:
    """Terminate the server's whole process group (viz forks the uvicorn worker)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _group_alive(process.pid):
            break
        os.killpg(process.pid, sig)
        deadline = time.monotonic() + 20
        while _group_alive(process.pid) and time.monotonic() < deadline:
            process.poll()  # reap the leader so it does not linger as a zombie
            time.sleep(0.2)
    process.wait(timeout=10)


@contextmanager
def viz_server(workspace: Path, port: int, log: Path) -> Iterator[subprocess.Popen]:
    """A running `kedro viz run` for the full pipeline; always stopped on exit."""
    process = start_kedro_viz(workspace, port, log)
    try:
        yield process
    finally:
        _stop(process)


def _fetch_graph(process: subprocess.Popen, url: str, log: Path) -> dict:
    """Poll ``url`` until the server answers it; fail early if the server dies."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"kedro viz exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(
        f"kedro viz did not answer {url} in {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-4000:]}"
    )


@pytest.fixture(scope="module")
def full_graph(tmp_path_factory) -> dict:
    """The JSON graph Kedro-Viz serves for the ``full`` pipeline."""
    folder = tmp_path_factory.mktemp("viz")
    workspace = make_workspace(folder / "project")
    port = free_viz_port()
    log = folder / "viz.log"
    with viz_server(workspace, port, log) as process:
        graph = _fetch_graph(process, f"http://127.0.0.1:{port}{GRAPH_ENDPOINT}", log)
    assert not _group_alive(process.pid), "kedro viz left processes behind"
    return graph


def _names(graph: dict, kind: str) -> set[str]:
    return {node["name"] for node in graph["nodes"] if node["type"] == kind}


def _full_task_names(graph: dict) -> set[str]:
    """Task names with their stage in front, as `kedro run --nodes` takes them."""
    return {node["full_name"] for node in graph["nodes"] if node["type"] == "task"}


def test_viz_serves_the_full_pipeline(full_graph):
    assert full_graph["selected_pipeline"] == "full"
    tasks = _names(full_graph, "task")
    for stage, names in EXPECTED_TASKS.items():
        assert set(names) <= tasks, f"{stage}: missing {set(names) - tasks}"
    assert set(EXPECTED_DATASETS) <= _names(full_graph, "data")


def test_viz_shows_every_node_of_every_stage(full_graph):
    registered = register_pipelines()
    tasks = _full_task_names(full_graph)
    for stage in STAGES:
        stage_nodes = {node.name for node in registered[stage].nodes}
        assert stage_nodes, f"stage {stage} has no nodes"
        assert stage_nodes <= tasks, f"{stage}: missing {stage_nodes - tasks}"
    assert len(full_graph["edges"]) > len(tasks)


def test_viz_groups_each_stage_as_a_modular_pipeline(full_graph):
    groups = {node["id"] for node in full_graph["nodes"] if node["type"] == "modularPipeline"}
    assert groups == set(STAGES)
    tree = full_graph["modular_pipelines"]
    for node in full_graph["nodes"]:
        if node["type"] == "task":
            stage = node["full_name"].split(".")[0]
            assert node["modular_pipelines"] == [stage], node["full_name"]
            assert node["id"] in {child["id"] for child in tree[stage]["children"]}
    # Stages connect through the catalog's own dataset names (no namespace prefix).
    assert "samples" in _names(full_graph, "data") and "ingest.samples" not in _names(
        full_graph, "data"
    )


def test_viz_orders_the_catalog_layers_without_a_cycle(full_graph):
    # kedro-viz drops the layer view (empty list) when the layer graph has a cycle.
    layers = full_graph["layers"]
    # The main line in data-flow order; the text side's model_input (retrieved histories,
    # prompt recipe) feeds the LLM's input but not the CRMs, so it sits anywhere before it.
    main_line = ["raw", "primary", "crm", "crm_output", "llm_input", "llm", "model_output",
                 "reporting"]  # fmt: skip
    assert [layer for layer in layers if layer in main_line] == main_line
    assert layers.index("primary") < layers.index("model_input") < layers.index("llm_input")
