"""The shape every stage keeps: thin nodes, no SQL in the pipelines, each stage its own
parameters, library code free of Kedro."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from reclora_pipeline.pipeline_registry import AFTER_TRAINING, STAGES, register_pipelines

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "reclora_pipeline"
PIPELINES = PACKAGE / "pipelines"
MAX_NODE_BODY_LINES = 25
SQL = re.compile(r"\b(SELECT|INSERT|CREATE|JOIN)\b")
# The modules that are Kedro's side of the project: wiring, catalog datasets, hooks, settings.
KEDRO_FACING_FOLDERS = ("pipelines", "datasets")
KEDRO_FACING_MODULES = {"settings.py", "hooks.py", "settings_hooks.py", "staging_hooks.py",
                        "run_timing.py", "pipeline_registry.py", "__main__.py"}  # fmt: skip


def _kedro_facing(path: Path) -> bool:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] in KEDRO_FACING_FOLDERS or str(relative) in KEDRO_FACING_MODULES


def _functions(path: Path) -> list[ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]


def _body_lines(function: ast.FunctionDef) -> int:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


@pytest.mark.parametrize("stage", STAGES + AFTER_TRAINING)
def test_node_bodies_are_short(stage):
    long = {f.name: _body_lines(f) for f in _functions(PIPELINES / stage / "nodes.py")
            if _body_lines(f) > MAX_NODE_BODY_LINES}  # fmt: skip
    assert not long, f"{stage} node bodies over {MAX_NODE_BODY_LINES} lines: {long}"


def test_no_sql_and_no_kedro_outside_the_pipelines():
    sql = [p.relative_to(PACKAGE) for p in PIPELINES.rglob("*.py")
           if any(isinstance(n, ast.Constant) and isinstance(n.value, str) and SQL.search(n.value)
                  for n in ast.walk(ast.parse(p.read_text())))]  # fmt: skip
    assert not sql, f"SQL text in {sql}: it belongs in the stage's library"
    library = [p for p in PACKAGE.rglob("*.py") if not _kedro_facing(p)]
    kedro = [p.relative_to(PACKAGE) for p in library
             if re.search(r"^\s*(from|import) kedro", p.read_text(), re.M)]  # fmt: skip
    assert not kedro, f"library modules importing kedro: {kedro}"


@pytest.mark.parametrize("stage", STAGES + AFTER_TRAINING)
def test_each_stage_reads_only_its_own_parameters(stage):
    pipeline = register_pipelines()[stage]
    params = {name for name in pipeline.inputs() if name.startswith("params:")}
    assert params == {f"params:{stage}"}
