"""Helpers shared by the pipeline definitions."""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline, pipeline


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
