"""Helpers shared by the pipeline definitions."""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline, pipeline

from reclora_pipeline.finetune.arms import check_arm

# The Few2Many rows each kind of lens sees the users through (catalog names).
SAMPLES_BY_LENS = {"full": "few2many_samples", "few_shot": "few2many_samples_few_shot_lens"}


def named_partial(function, **fixed):
    """``partial`` that keeps the function's name and docstring (kedro-viz shows them)."""
    return update_wrapper(partial(function, **fixed), function)


def stage_pipeline(nodes: list[Node], stage: str) -> Pipeline:
    """The nodes of ``stage`` as a Kedro modular pipeline (namespace ``stage``).

    kedro viz draws it as one collapsible group and node names become
    ``<stage>.<node>`` (what ``--nodes`` takes); dataset and parameter names stay as the
    catalog spells them (no namespace prefix), so stages connect by those names.
    """
    return pipeline(nodes, namespace=stage, prefix_datasets_with_namespace=False)


def arm_samples(arm: str) -> str:
    """The Few2Many table ``arm`` trains and is scored on: the rows seen through its lens."""
    return SAMPLES_BY_LENS[check_arm(arm).lens]
