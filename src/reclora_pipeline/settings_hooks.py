"""Every stage's settings parsed once, before the first node runs; nodes receive them parsed."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.hooks import report_concisely
from reclora_pipeline.stage_settings import PARAMS_PREFIX, parse_groups, settings_groups

logger = logging.getLogger(__name__)


class ParsedSettingsHooks:
    """Parses the ``params:<stage>`` groups of the run's nodes at its start, so a bad value
    anywhere fails in seconds, before any model is loaded; then hands each node the parsed
    settings object in place of the raw mapping.

    The catalog keeps the raw mappings, so kedro-mlflow still logs every key as an MLflow
    parameter (it reads the node inputs before they are replaced).
    """

    def __init__(self) -> None:
        self._parsed: dict[str, Any] = {}

    # tryfirst and registered after the other tryfirst hooks (settings.py): runs before them,
    # so a bad setting fails before a database is taken or an MLflow run is started.
    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, pipeline: Any, catalog: Any, **_: Any) -> None:
        groups = settings_groups(pipeline.inputs())
        try:
            self._parsed = parse_groups(
                {group: catalog.load(PARAMS_PREFIX + group) for group in groups}, groups
            )
        except UserInputError as error:
            # Kedro does not call on_pipeline_error for a failure in this hook.
            report_concisely(error)
            raise
        if groups:
            logger.info("settings checked: %s", ", ".join(groups))

    @hook_impl
    def before_node_run(self, node: Any, **_: Any) -> dict[str, Any] | None:
        replaced = {name: self._parsed[name.removeprefix(PARAMS_PREFIX)] for name in node.inputs
                    if name.removeprefix(PARAMS_PREFIX) in self._parsed
                    and name.startswith(PARAMS_PREFIX)}  # fmt: skip
        return replaced or None
