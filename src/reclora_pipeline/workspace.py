"""Scratch copies of the project (configuration + empty data folders) for tests and benchmarks.

A run inside a workspace reads the same ``conf/base`` as the real project but
writes its DuckDB file, reports and MLflow store under the workspace, so it
never touches the user's own ``data/``.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

DATA_LAYERS = (
    "01_raw", "02_intermediate", "03_primary", "04_feature",
    "05_model_input", "06_models", "07_model_output", "08_reporting",
)  # fmt: skip


def project_root() -> Path:
    """The source checkout this package is installed from (editable install)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "conf" / "base").is_dir():
        raise FileNotFoundError(
            f"no Kedro project found at {root}: workspaces need an editable install of the checkout"
        )
    return root


def make_workspace(destination: str | Path) -> Path:
    """Create ``destination`` with the project's pyproject.toml, conf/base and data layers."""
    root = project_root()
    target = Path(destination)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(root / "conf" / "base", target / "conf" / "base", dirs_exist_ok=True)
    (target / "conf" / "local").mkdir(parents=True, exist_ok=True)
    # Kedro insists on the source folder; the package itself comes from the install.
    (target / "src").mkdir(exist_ok=True)
    (target / ".telemetry").write_text("consent: false\n")
    for layer in DATA_LAYERS:
        (target / "data" / layer).mkdir(parents=True, exist_ok=True)
    return target


DISTRIBUTED_VARIABLES = (
    "MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
    "CROSS_RANK", "CROSS_SIZE",
)  # fmt: skip


def kedro_environment() -> dict[str, str]:
    """Environment for a quiet, offline ``kedro`` subprocess."""
    env = dict(os.environ)
    # A process group of the calling process (DeepSpeed in the test session) must not leak
    # into the child: its MASTER_PORT is taken, and the child would fall back to torch.
    for name in DISTRIBUTED_VARIABLES:
        env.pop(name, None)
    env["KEDRO_DISABLE_TELEMETRY"] = "true"
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    # Rich wraps log lines at the terminal width (80 without a terminal); wide enough
    # that a namespaced node name stays on its "Completed node:" line.
    env.setdefault("COLUMNS", "200")
    return env


def run_kedro(
    workspace: str | Path, *args: str, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run ``kedro <args>`` inside ``workspace`` with this interpreter; capture its output."""
    kedro = Path(sys.executable).with_name("kedro")
    return subprocess.run(
        [str(kedro), *args],
        cwd=workspace,
        env=kedro_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_viz_port() -> int:
    """A free local port below Linux's ephemeral range: kedro-viz refuses any port above 49151."""
    for port in random.sample(range(20000, 32768), 50):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found for kedro viz")


def start_kedro_viz(workspace: str | Path, port: int, log: Path) -> subprocess.Popen:
    """`kedro viz run` for the full pipeline in ``workspace``, output to ``log``.

    It gets its own session, hence its own process group: viz serves from a child
    process, and the caller stops both by signalling the group.
    """
    kedro = Path(sys.executable).with_name("kedro")
    command = [str(kedro), "viz", "run", "--no-browser", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--pipeline", "full"]
    with log.open("w") as output:
        return subprocess.Popen(
            command,
            cwd=workspace,
            env=kedro_environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
