"""Wiring of the finetune pipeline: one node per arm, each writing an adapter folder."""

from kedro.pipeline import Pipeline, node

from reclora_pipeline.finetune.arms import ARMS
from reclora_pipeline.pipelines.finetune import nodes
from reclora_pipeline.pipelines.naming import named_partial, stage_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """The shared zero-shot valid pass, then finetune_<arm> for every arm; ablations train
    only when listed in finetune.ablations."""
    inputs = ["few2many_samples", "users", "language_model", "zero_shot_valid", "params:finetune"]
    return stage_pipeline(
        [
            node(
                nodes.score_zero_shot_valid,
                ["few2many_samples", "language_model", "params:finetune"],
                "zero_shot_valid",
                name="score_zero_shot_valid",
            ),
            *(
                node(
                    named_partial(nodes.finetune_arm, arm=arm),
                    inputs,
                    [f"adapter_{arm}", f"finetune_report_{arm}"],
                    name=f"finetune_{arm}",
                )
                for arm in ARMS
            ),
        ],
        "finetune",
    )
