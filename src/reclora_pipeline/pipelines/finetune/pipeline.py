"""Wiring of the finetune pipeline: one node per arm, each writing an adapter folder."""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from reclora_pipeline.finetune.arms import ARMS
from reclora_pipeline.pipelines.finetune import nodes


def _named(function, **fixed):
    """``partial`` that keeps the function's name and docstring (kedro-viz shows them)."""
    return update_wrapper(partial(function, **fixed), function)


def create_pipeline(**kwargs) -> Pipeline:
    """finetune_<arm> for every arm; ablations train only when listed in finetune.ablations."""
    return pipeline(
        [
            node(
                _named(nodes.finetune_arm, arm=arm),
                ["few2many_samples", "users", "language_model", "params:finetune"],
                [f"adapter_{arm}", f"finetune_report_{arm}"],
                name=f"finetune_{arm}",
            )
            for arm in ARMS
        ]
    )
