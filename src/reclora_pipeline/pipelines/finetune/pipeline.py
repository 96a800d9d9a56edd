"""Wiring of the finetune pipeline: one node per arm, each writing an adapter folder."""

from kedro.pipeline import Pipeline, node

from reclora_pipeline.finetune.arms import ARMS
from reclora_pipeline.pipelines.finetune import nodes
from reclora_pipeline.pipelines.naming import named_partial, stage_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """finetune_<arm> for every arm; ablations train only when listed in finetune.ablations."""
    return stage_pipeline(
        [
            node(
                named_partial(nodes.finetune_arm, arm=arm),
                ["few2many_samples", "users", "language_model", "params:finetune"],
                [f"adapter_{arm}", f"finetune_report_{arm}"],
                name=f"finetune_{arm}",
            )
            for arm in ARMS
        ],
        "finetune",
    )
