"""Kedro project settings."""

import warnings

from kedro.config import OmegaConfigLoader

from reclora_pipeline.hooks import ConciseUserErrorHooks, MlflowFallbackHooks
from reclora_pipeline.run_timing import RunTimingHooks
from reclora_pipeline.settings_hooks import ParsedSettingsHooks
from reclora_pipeline.staging_hooks import StagedOutputHooks

# Deprecation noise from kedro's and kedro-mlflow's own resolvers that users cannot act on.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (conf/paper, conf/local) overrides single nested parameters
    # instead of replacing a whole top-level group.
    "merge_strategy": {"parameters": "soft"},
}

HOOKS = (
    ConciseUserErrorHooks(),
    MlflowFallbackHooks(),
    RunTimingHooks(),
    StagedOutputHooks(),
    ParsedSettingsHooks(),
)
