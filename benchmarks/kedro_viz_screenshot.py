"""Screenshot of Kedro-Viz showing the ``full`` pipeline's flowchart (docs/kedro_viz_full.png).

Starts `kedro viz run --pipeline full` in a scratch workspace on a free port,
waits for its API, renders the page in headless Chromium and stops both.
Chromium is driven over the DevTools protocol rather than with ``--screenshot``
so that Kedro-Viz's feature tour and its offline "update" banner stay off the
picture. Needs Debian's ``chromium`` (``apt-get install -y chromium``); the
``websockets`` client comes with kedro-viz (uvicorn[standard]).

    python benchmarks/kedro_viz_screenshot.py [--output PNG] [--window-size 1800,1100]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from websockets.sync.client import ClientConnection, connect

from reclora_pipeline.workspace import (
    free_viz_port,
    make_workspace,
    project_root,
    start_kedro_viz,
)


def wait_for(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kedro viz exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise TimeoutError(f"kedro viz did not answer {url} in {timeout} s")


def stop(process: subprocess.Popen) -> None:
    """Terminate the whole group: viz runs its web server in a child process."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page target."""

    def __init__(self, connection: ClientConnection) -> None:
        self._socket = connection
        self._next_id = 0

    def call(self, method: str, **params: object) -> dict:
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:  # skip events until our reply arrives
            message = json.loads(self._socket.recv(timeout=120))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> object:
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return reply["result"].get("value")


def start_chromium(profile: Path, window_size: str) -> tuple[subprocess.Popen, str]:
    """Headless Chromium with a DevTools port; returns it and its page's websocket URL."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise FileNotFoundError("chromium not found: apt-get install -y chromium")
    command = [
        chromium,
        "--headless",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",  # a throwaway profile, not ~/.config
        "--remote-debugging-port=0",  # Chromium picks a port and writes it to the profile
        f"--window-size={window_size}",
        "about:blank",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while not port_file.is_file() or not port_file.read_text().strip():
        if time.monotonic() > deadline or process.poll() is not None:
            stop(process)
            raise RuntimeError("chromium did not open its DevTools port")
        time.sleep(0.2)
    port = port_file.read_text().split()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
        pages = [target for target in json.load(reply) if target["type"] == "page"]
    return process, pages[0]["webSocketDebuggerUrl"]


def wait_until(page: DevTools, expression: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"page never satisfied: {expression}")
        time.sleep(0.5)


def screenshot(page: DevTools, url: str, output: Path, window_size: str, settle_s: float) -> None:
    """Render ``url`` without onboarding hints or banners and save a PNG of the viewport."""
    # The viewport itself, not the window around it, gets the requested size.
    width, height = (int(side) for side in window_size.split(","))
    page.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    # Kedro-Viz reads its UI settings from localStorage at start-up (and writes them back
    # later), so they are set before any of its scripts runs: no feature tour over the graph.
    page.call("Page.enable")  # without it the script below never runs
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        source="localStorage.setItem('KedroViz', JSON.stringify({showFeatureHints: false}))",
    )
    page.call("Page.navigate", url=url)
    wait_until(page, "document.querySelectorAll('.pipeline-node').length > 0")
    time.sleep(settle_s)  # the layout worker and zoom transition end after the first nodes
    # Offline, Kedro-Viz announces an update to version "None"; dismiss that banner.
    page.evaluate(
        "document.querySelectorAll('.update-reminder-unexpanded button')"
        ".forEach(b => b.textContent === 'Dismiss' && b.click())"
    )
    time.sleep(1)
    image = page.call("Page.captureScreenshot", format="png")["data"]
    output.write_bytes(base64.b64decode(image))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=project_root() / "docs/kedro_viz_full.png")
    parser.add_argument("--window-size", default="1800,1100")
    parser.add_argument("--settle-s", type=float, default=5.0, help="wait after the first nodes")
    args = parser.parse_args()
    output = args.output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="kedro-viz-") as scratch:
        folder = Path(scratch)
        workspace = make_workspace(folder / "project")
        port = free_viz_port()
        viz = start_kedro_viz(workspace, port, folder / "viz.log")
        chromium = None
        try:
            wait_for(f"http://127.0.0.1:{port}/api/pipelines/full", viz)
            chromium, websocket_url = start_chromium(folder / "chromium", args.window_size)
            with connect(websocket_url, max_size=None, open_timeout=30) as connection:
                page = DevTools(connection)
                url = f"http://127.0.0.1:{port}/"
                screenshot(page, url, output, args.window_size, args.settle_s)
        except Exception:
            print((folder / "viz.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            if chromium is not None:
                stop(chromium)
            stop(viz)
    print(f"{output} ({output.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
