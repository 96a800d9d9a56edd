"""notebooks/results.ipynb: committed without outputs, and it reads datasets that exist.

Jupyter is not a project dependency, so the notebook JSON is read with the stdlib and its
cells after the set-up run with ``exec`` against a stub catalog of report documents.
"""

from __future__ import annotations

import ast
import io
import json
import warnings
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from matplotlib.figure import Figure

from reclora_pipeline.evaluation.report import metrics_document, metrics_markdown
from reclora_pipeline.pipeline_registry import register_pipelines

PROJECT = Path(__file__).resolve().parents[1]
NOTEBOOK = PROJECT / "notebooks" / "results.ipynb"
SHOWN = {
    "metrics",
    "metrics_table",
    "roc_curves_plot",
    "reliability_curves_plot",
    "auc_by_history_plot",
    "gate_heatmap_plot",
    "ctr_lens_metrics",
    "finetune_report_reclora",
    "finetune_report_vanilla_lora",
    "few2many_summary",
}


@pytest.fixture(scope="module")
def notebook() -> dict[str, Any]:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def _code_cells(notebook: dict[str, Any]) -> list[str]:
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


def _loaded_names(source: str) -> list[str]:
    """``X`` of every ``catalog.load("X")`` call."""
    return [
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "load"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "catalog"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]


def test_committed_without_outputs(notebook):
    assert notebook["nbformat"] == 4
    for cell in notebook["cells"]:
        assert cell["cell_type"] in ("markdown", "code")
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_code_cells_compile(notebook):
    for number, source in enumerate(_code_cells(notebook)):
        compile(source, f"results.ipynb code cell {number}", "exec")


def test_loads_only_datasets_of_the_full_pipeline(notebook):
    names = {name for source in _code_cells(notebook) for name in _loaded_names(source)}
    assert names >= SHOWN, f"not shown: {sorted(SHOWN - names)}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kedro's deprecated resolver registration
        conf = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")
        catalog = DataCatalog.from_config(conf["catalog"])
    produced = register_pipelines()["full"].datasets()
    assert not [n for n in names if n not in catalog], "not in conf/base/catalog.yml"
    assert not [n for n in names if n not in produced], "not written by the full pipeline"


class _StubCatalog:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def load(self, name: str) -> Any:
        return self._data[name]


def _png() -> bytes:
    buffer = io.BytesIO()
    Figure(figsize=(1, 1)).savefig(buffer, format="png")
    return buffer.getvalue()


def _stub_outputs() -> dict[str, Any]:
    model = {"auc": 0.7, "logloss": 0.6, "accuracy": 0.65, "n": 100}
    model |= {"auc_ci_low": 0.65, "auc_ci_high": 0.75}
    comparison = {"mean_difference": 0.01, "ci_low": 0.0, "ci_high": 0.02, "p_a_not_better": 0.1}
    metrics = metrics_document(
        {"reclora": model, "vanilla_lora": model, "din": model},
        None,
        None,
        {"reclora - vanilla_lora": comparison},
    )
    epoch = {"train_loss": 0.6, "valid_auc": 0.7, "samples_per_s": 3.0, "seconds": 10.0}
    report = {
        "engine": "torch",
        "n_train": 8,
        "history": [{"epoch": 0, **epoch}, {"epoch": 1, **epoch}],
        "best_epoch": 1,
        "best_valid_auc": 0.7,
    }
    subset = {"samples": 8, "positives": 4, "users": 3}
    subset |= {"median_prompt_tokens": 100.0, "max_prompt_tokens": 120}
    crm = {"valid_auc": 0.7, "test_auc": 0.7, "test_logloss": 0.6, "n_test": 100}
    crm |= {"epochs": 3, "best_epoch": 1}
    png = _png()
    return {
        "metrics": metrics,
        "metrics_table": metrics_markdown(metrics),
        **{
            f"{figure}_plot": png
            for figure in ("roc_curves", "reliability_curves", "auc_by_history", "gate_heatmap")
        },
        "ctr_lens_metrics": {"din": crm, "sim": crm},
        "finetune_report_reclora": {"arm": "reclora", **report},
        "finetune_report_vanilla_lora": {"arm": "vanilla_lora", **report},
        "few2many_summary": {"test": subset, "train": subset, "valid": subset},
    }


def test_cells_run_on_report_documents(notebook):
    setup, *cells = _code_cells(notebook)
    # The set-up cell opens a Kedro session on the real project: replaced by the stub.
    assert "KedroSession.create" in setup and "catalog =" in setup
    namespace: dict[str, Any] = {}
    exec("import pandas as pd\nfrom IPython.display import Image, Markdown, display", namespace)
    namespace["catalog"] = _StubCatalog(_stub_outputs())
    with redirect_stdout(io.StringIO()):  # display() prints outside IPython
        for number, source in enumerate(cells, start=1):
            exec(compile(source, f"results.ipynb code cell {number}", "exec"), namespace)
