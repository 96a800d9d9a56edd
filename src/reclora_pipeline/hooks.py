"""Kedro hooks of the project."""

from __future__ import annotations

import logging
import os
import sys
from types import TracebackType
from typing import Any

from kedro.framework.hooks import hook_impl

from reclora_pipeline.errors import UserInputError

logger = logging.getLogger(__name__)


class ConciseUserErrorHooks:
    """Report bad input or parameters as one clear message instead of a long traceback.

    Such errors are the user's to fix and their message says how; a
    traceback through Kedro's runner only hides it. Set RECLORA_TRACEBACK=1 to
    see the full traceback anyway.
    """

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], **_: Any) -> None:
        if not isinstance(error, UserInputError) or os.environ.get("RECLORA_TRACEBACK"):
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
