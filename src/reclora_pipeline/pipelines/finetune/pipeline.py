"""Wiring of the finetune pipeline: one node per arm, each writing an adapter folder."""

from kedro.pipeline import Pipeline, node

from reclora_pipeline.finetune.arms import ARMS
from reclora_pipeline.pipelines.finetune import nodes
from reclora_pipeline.pipelines.naming import arm_samples, named_partial, stage_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """The shared zero-shot valid pass, the lens retrained on the train rows alone (for
    reclora_no_few2many), then finetune_<arm> for every arm; ablations train only when
    listed in finetune.ablations."""
    shared = ["users", "language_model", "zero_shot_valid", "params:finetune"]
    return stage_pipeline(
        [
            node(
                nodes.score_zero_shot_valid,
                ["few2many_samples", "language_model", "params:finetune"],
                "zero_shot_valid",
                name="score_zero_shot_valid",
            ),
            node(
                nodes.see_through_few_shot_lens,
                [
                    "few2many_samples",
                    "ctr_features",
                    "ctr_vocabulary",
                    "lens_recipe",
                    "params:finetune",
                ],
                ["few2many_samples_few_shot_lens", "few_shot_lens_report"],
                name="see_through_few_shot_lens",
            ),
            *(
                node(
                    named_partial(nodes.finetune_arm, arm=arm),
                    [arm_samples(arm), *shared],
                    [f"adapter_{arm}", f"finetune_report_{arm}"],
                    name=f"finetune_{arm}",
                )
                for arm in ARMS
            ),
        ],
        "finetune",
    )
