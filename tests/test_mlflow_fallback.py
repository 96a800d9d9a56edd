"""An unreachable MLflow server costs a warning, never the run: it is tracked locally instead."""

from __future__ import annotations

import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.hooks import _create_hook_manager
from kedro.framework.hooks.manager import _register_hooks, _register_hooks_entry_points

from reclora_pipeline import settings
from reclora_pipeline.hooks import (
    MlflowFallbackHooks,
    fallback_tracking_uri,
    local_tracking_uri,
    tracking_server_answers,
)
from reclora_pipeline.workspace import make_workspace, run_kedro


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def http_server() -> Iterator[Callable[[int], str]]:
    """Start local HTTP servers that answer every GET with a given status; returns their URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(status: int) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# -- reachability ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 401, 404])
def test_any_client_side_answer_counts_as_reachable(http_server, status):
    assert tracking_server_answers(http_server(status), timeout=2)


def test_a_failing_server_is_not_usable(http_server):
    assert not tracking_server_answers(http_server(503), timeout=2)


def test_a_closed_port_is_unreachable_at_once():
    start = time.monotonic()
    assert not tracking_server_answers(f"http://127.0.0.1:{_closed_port()}", timeout=2)
    assert time.monotonic() - start < 1.5


def test_a_silent_server_is_unreachable_after_the_timeout():
    with socket.socket() as silent:  # accepts connections, never responds
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        start = time.monotonic()
        assert not tracking_server_answers(f"http://127.0.0.1:{silent.getsockname()[1]}", 0.5)
        assert time.monotonic() - start < 1.5


# -- fallback decision --------------------------------------------------------------------


def _never_probed(uri: str) -> bool:
    raise AssertionError(f"{uri} should not be probed")


@pytest.mark.parametrize(
    "uri",
    [
        None,
        "",
        "sqlite:///data/mlflow.db",
        "mlruns",
        "/srv/mlruns",
        "file:///srv/mlruns",
        "databricks",
    ],
)
def test_local_and_special_stores_are_left_alone(uri, tmp_path):
    assert fallback_tracking_uri(uri, tmp_path, answers=_never_probed) is None


def test_a_reachable_server_is_kept(tmp_path):
    assert fallback_tracking_uri("https://mlflow.example", tmp_path, answers=lambda _: True) is None


def test_an_unreachable_server_is_replaced_by_the_project_store(tmp_path):
    fallback = fallback_tracking_uri("http://mlflow.example:5000", tmp_path, lambda _: False)
    assert fallback == f"sqlite:///{tmp_path.resolve()}/data/mlflow.db"


# -- the hook --------------------------------------------------------------------------


def _context(workspace: Path) -> SimpleNamespace:
    loader = OmegaConfigLoader(str(workspace / "conf"), base_env="base", default_run_env="local")
    return SimpleNamespace(config_loader=loader, project_path=workspace)


def _point_to(workspace: Path, uri: str | None) -> None:
    value = "null" if uri is None else uri
    (workspace / "conf/local/mlflow.yml").write_text(f"server:\n  mlflow_tracking_uri: {value}\n")


def test_hook_redirects_an_unreachable_server(tmp_path, caplog):
    workspace = make_workspace(tmp_path / "project")
    unreachable = f"http://127.0.0.1:{_closed_port()}"
    _point_to(workspace, unreachable)
    context = _context(workspace)

    with caplog.at_level(logging.WARNING, logger="reclora_pipeline.hooks"):
        MlflowFallbackHooks(timeout=1).after_context_created(context)

    config = context.config_loader["mlflow"]
    assert config["server"]["mlflow_tracking_uri"] == local_tracking_uri(workspace)
    assert config["tracking"]["experiment"]["name"] == "reclora_pipeline"  # the rest is kept
    assert unreachable in caplog.text and local_tracking_uri(workspace) in caplog.text
    assert (workspace / "data").is_dir()


def test_hook_follows_the_environment_variable_when_the_file_names_no_uri(
    tmp_path, monkeypatch, caplog
):
    workspace = make_workspace(tmp_path / "project")
    _point_to(workspace, None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    context = _context(workspace)

    with caplog.at_level(logging.WARNING, logger="reclora_pipeline.hooks"):
        MlflowFallbackHooks(timeout=1).after_context_created(context)

    assert context.config_loader["mlflow"]["server"]["mlflow_tracking_uri"].startswith("sqlite")


def test_hook_leaves_a_local_store_and_a_live_server_alone(tmp_path, http_server, caplog):
    workspace = make_workspace(tmp_path / "project")
    for uri in (None, http_server(200)):  # None: conf/base's own SQLite store
        if uri is not None:
            _point_to(workspace, uri)
        context = _context(workspace)
        with caplog.at_level(logging.WARNING, logger="reclora_pipeline.hooks"):
            MlflowFallbackHooks(timeout=1).after_context_created(context)
        assert "mlflow" not in context.config_loader.data  # still read from the files
    assert caplog.text == ""


def test_hook_runs_before_kedro_mlflow():
    manager = _create_hook_manager()
    _register_hooks(manager, settings.HOOKS)  # the order KedroSession uses
    _register_hooks_entry_points(manager, ())
    # pluggy calls hook implementations from the end of this list to its start.
    order = [
        type(impl.plugin).__name__ for impl in manager.hook.after_context_created.get_hookimpls()
    ]
    assert "MlflowHook" in order
    assert order[::-1].index("MlflowFallbackHooks") < order[::-1].index("MlflowHook")


# -- end to end -----------------------------------------------------------------------------


@pytest.mark.slow
def test_kedro_run_with_an_unreachable_server_is_tracked_locally(tmp_path, monkeypatch):
    workspace = make_workspace(tmp_path / "project")
    unreachable = f"http://127.0.0.1:{_closed_port()}"
    _point_to(workspace, unreachable)
    monkeypatch.setenv("COLUMNS", "400")  # keep Rich from wrapping the warning

    result = run_kedro(workspace, "run", "--pipeline", "ingest", timeout=300)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert f"MLflow tracking server {unreachable} did not answer" in output
    assert local_tracking_uri(workspace) in output
    store = sqlite3.connect(workspace / "data/mlflow.db")
    try:
        runs = store.execute(
            "SELECT r.name, r.status FROM runs r JOIN experiments e USING (experiment_id)"
            " WHERE e.name = 'reclora_pipeline'"
        ).fetchall()
    finally:
        store.close()
    assert runs == [("ingest", "FINISHED")]
