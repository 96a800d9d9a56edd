"""Every stage's settings checked once, before the first node runs, with errors that name
the full key; and logged to MLflow one key per parameter."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.hooks import report_concisely
from reclora_pipeline.stage_settings import PARAMS_PREFIX, STAGE_SETTINGS, parse_groups

logger = logging.getLogger(__name__)


def flat_settings(group: str, settings: Any) -> dict[str, Any]:
    """``{"finetune.training.lr": 0.001, ...}``: one entry per leaf value of ``settings``."""
    flat: dict[str, Any] = {}

    def add(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                add(f"{prefix}.{key}", item)
        else:
            flat[prefix] = list(value) if isinstance(value, tuple) else value

    add(group, settings)
    return flat


class ParsedSettingsHooks:
    """Checks the settings of every stage as soon as the project context exists.

    Nodes annotate their ``params:<stage>`` input with the stage's settings class, so
    Kedro itself builds the settings objects from the parameters before the first node
    (its typed parameters); this hook runs the same parser first, so that a bad value or
    an unknown key stops the run with one line naming the full key, the value and what
    is allowed (or the closest known key), instead of a traceback.
    """

    def __init__(self) -> None:
        self._logged: set[str] = set()

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        parameters = context.config_loader["parameters"]
        groups = [group for group in STAGE_SETTINGS if group in parameters]
        try:
            parse_groups(parameters, groups)
        except UserInputError as error:
            report_concisely(error)
            raise
        logger.info("settings checked: %s", ", ".join(groups))

    @hook_impl
    def before_pipeline_run(self, **_: Any) -> None:
        self._logged = set()

    @hook_impl
    def before_node_run(self, node: Any, inputs: dict[str, Any], **_: Any) -> None:
        """kedro-mlflow logs a settings object as one long string; add one MLflow
        parameter per key (``finetune.training.lr``), once per group and run."""
        if mlflow.active_run() is None:
            return
        for name, value in inputs.items():
            group = name.removeprefix(PARAMS_PREFIX)
            if (
                name.startswith(PARAMS_PREFIX)
                and group in STAGE_SETTINGS
                and group not in self._logged
            ):
                self._logged.add(group)
                mlflow.log_params(
                    {key: str(item) for key, item in flat_settings(group, value).items()}
                )
