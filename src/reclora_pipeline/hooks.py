"""Kedro hooks of the project."""

from __future__ import annotations

import http.client
import logging
import os
import ssl
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl

from reclora_pipeline.errors import UserInputError

if TYPE_CHECKING:
    from kedro.framework.context import KedroContext

logger = logging.getLogger(__name__)


class ConciseUserErrorHooks:
    """Report bad input or parameters as one clear message instead of a long traceback.

    Such errors are the user's to fix and their message says how; a
    traceback through Kedro's runner only hides it. Set RECLORA_TRACEBACK=1 to
    see the full traceback anyway.
    """

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], **_: Any) -> None:
        if isinstance(error, UserInputError):
            report_concisely(error)


def report_concisely(error: UserInputError) -> None:
    """Log ``error`` as one line and make the interpreter print only that when it exits with it.

    Does nothing when RECLORA_TRACEBACK is set (the full traceback is printed then).
    """
    if os.environ.get("RECLORA_TRACEBACK"):
        return
    logger.error("%s: %s", type(error).__name__, error)
    previous_hook = sys.excepthook

    def concise_hook(
        kind: type[BaseException], value: BaseException, traceback: TracebackType | None
    ) -> None:
        if value is error:
            print(f"\nRun failed. {type(error).__name__}: {error}", file=sys.stderr)
            return
        previous_hook(kind, value, traceback)

    sys.excepthook = concise_hook


# Where runs go when the configured MLflow server is down: the same store conf/base uses.
LOCAL_TRACKING_STORE = Path("data") / "mlflow.db"
# kedro-mlflow registers these patterns itself, but only in its own hook, which runs later.
MLFLOW_CONFIG_PATTERNS = ("mlflow*", "mlflow*/**", "**/mlflow*")


def local_tracking_uri(project_path: str | Path) -> str:
    """The project's SQLite tracking store as an absolute URI (independent of the cwd)."""
    return "sqlite:///" + (Path(project_path) / LOCAL_TRACKING_STORE).resolve().as_posix()


def _probe(uri: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(uri, timeout=timeout):
            return True
    except urllib.error.HTTPError as error:
        # 401/403/404 still mean a server is there; 5xx is what MLflow retries and then fails on.
        return error.code < 500
    except urllib.error.URLError as error:
        # A TLS complaint comes from a live server; MLflow's own TLS settings decide the rest.
        return isinstance(error.reason, ssl.SSLError)
    except ssl.SSLError:
        return True
    except (OSError, ValueError, http.client.HTTPException):
        return False


def tracking_server_answers(uri: str, timeout: float = 3.0) -> bool:
    """Whether the HTTP(S) server at ``uri`` responds within about ``timeout`` seconds."""
    answers: list[bool] = []
    # A daemon thread bounds the whole probe: urlopen's timeout does not cover DNS look-ups.
    probe = threading.Thread(target=lambda: answers.append(_probe(uri, timeout)), daemon=True)
    probe.start()
    probe.join(timeout)
    return bool(answers) and answers[0]


def fallback_tracking_uri(
    configured: str | None,
    project_path: str | Path,
    answers: Callable[[str], bool] = tracking_server_answers,
) -> str | None:
    """The local store to track in instead of ``configured``; None keeps ``configured``.

    Only a remote HTTP(S) server that does not answer is replaced; local stores
    and special URIs such as ``databricks`` are never probed.
    """
    if not configured or urlsplit(configured).scheme.lower() not in ("http", "https"):
        return None
    if answers(configured):
        return None
    return local_tracking_uri(project_path)


class MlflowFallbackHooks:
    """Track in the project's local MLflow store when the configured server does not answer.

    Otherwise kedro-mlflow retries an unreachable server for about four minutes
    while the context is created, then fails the run before any node has run.
    """

    def __init__(self, timeout: float = 3.0) -> None:
        self.timeout = timeout

    # tryfirst: plugin hooks are registered after settings.HOOKS and pluggy calls the
    # last registered first, so kedro-mlflow's MlflowHook would otherwise contact the
    # server before this hook could redirect it.
    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        loader = context.config_loader
        loader.config_patterns.setdefault("mlflow", list(MLFLOW_CONFIG_PATTERNS))
        try:
            config = loader["mlflow"]
        except MissingConfigException:
            return
        server = dict(config.get("server") or {})
        # kedro-mlflow falls back to this variable when mlflow.yml names no URI.
        configured = server.get("mlflow_tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
        answers = partial(tracking_server_answers, timeout=self.timeout)
        fallback = fallback_tracking_uri(configured, context.project_path, answers)
        if fallback is None:
            return
        # SQLite creates the file but not its folder.
        (Path(context.project_path) / LOCAL_TRACKING_STORE.parent).mkdir(
            parents=True, exist_ok=True
        )
        logger.warning(
            "MLflow tracking server %s did not answer within %g s: this run is tracked in the "
            "local store %s instead (browse it with `mlflow ui --backend-store-uri %s`).",
            configured,
            self.timeout,
            fallback,
            fallback,
        )
        # A key set on the loader bypasses the config files, so kedro-mlflow reads this copy.
        loader["mlflow"] = {**config, "server": {**server, "mlflow_tracking_uri": fallback}}
