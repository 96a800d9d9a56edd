"""Pipeline registry: one pipeline per stage, plus ``full`` = all stages in order."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# The order of the RecLoRA flow. Stages that do not exist yet are skipped, so
# ``full`` always means "every stage this version of the package has".
STAGES = ("ingest", "item_text", "ctr_lens", "few2many", "finetune", "evaluation")


def register_pipelines() -> dict[str, Pipeline]:
    """Register every stage's pipeline, ``full`` and ``__default__`` (= ``full``)."""
    found = find_pipelines(raise_errors=True)
    pipelines = {name: found[name] for name in STAGES if name in found}
    full = Pipeline([])
    for pipeline in pipelines.values():
        full += pipeline
    pipelines["full"] = full
    pipelines["__default__"] = full
    return pipelines
