"""Pipeline registry: one pipeline per stage, ``full`` = all stages in order, and ``predict``."""

from __future__ import annotations

import importlib
import importlib.util

from kedro.pipeline import Pipeline

# The order of the RecLoRA flow. Stages whose package does not exist yet are
# skipped, so ``full`` always means "every stage this version of the package has".
STAGES = ("ingest", "item_text", "ctr_lens", "few2many", "finetune", "evaluation")
# Pipelines run after training, on its outputs: registered on their own, never in ``full``.
AFTER_TRAINING = ("predict",)


def _stage_pipeline(stage: str) -> Pipeline | None:
    module_name = f"reclora_pipeline.pipelines.{stage}"
    if importlib.util.find_spec(module_name) is None:
        return None
    return importlib.import_module(module_name).create_pipeline()


def register_pipelines() -> dict[str, Pipeline]:
    """Register every stage's pipeline, ``full``, ``__default__`` (= ``full``) and the
    pipelines that run after training (``predict``).

    Stages are imported explicitly rather than through ``find_pipelines``: kedro
    1.7 restricts that discovery to the pipeline names given on the command
    line, and ``full`` is a composition, not a module.
    """
    pipelines: dict[str, Pipeline] = {}
    for stage in STAGES:
        stage_pipeline = _stage_pipeline(stage)
        if stage_pipeline is not None:
            pipelines[stage] = stage_pipeline
    full = Pipeline([])
    for stage_pipeline in pipelines.values():
        full += stage_pipeline
    pipelines["full"] = full
    pipelines["__default__"] = full
    for name in AFTER_TRAINING:
        extra = _stage_pipeline(name)
        if extra is not None:
            pipelines[name] = extra
    return pipelines
