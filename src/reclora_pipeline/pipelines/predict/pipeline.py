"""Wiring of the predict pipeline (registered as ``predict``, not part of ``full``)."""

from kedro.pipeline import Pipeline, node

from reclora_pipeline.ctr.settings import TRAINED_CRMS
from reclora_pipeline.finetune.arms import ARMS
from reclora_pipeline.pipelines.naming import named_partial, stage_pipeline
from reclora_pipeline.pipelines.predict import nodes

REPORTS = [f"finetune_report_{arm}" for arm in ARMS]


def create_pipeline(**kwargs) -> Pipeline:
    """candidates file -> checked candidates -> prompts and lens vectors -> P(Yes) of the arm."""
    return stage_pipeline(
        [
            node(
                named_partial(nodes.read_candidates, arms=ARMS),
                ["params:predict", "users", "items", *REPORTS],
                "prediction_candidates",
                name="read_candidates",
            ),
            node(
                named_partial(nodes.build_prediction_rows, crms=TRAINED_CRMS),
                [
                    "prediction_candidates",
                    "interactions",
                    "users",
                    "item_descriptions",
                    "item_embeddings",
                    "source_info",
                    "prompt_recipe",
                    "ctr_vocabulary",
                    "lens_recipe",
                    "params:predict",
                    *(f"ctr_checkpoint_{name}" for name in TRAINED_CRMS),
                ],
                "prediction_rows",
                name="build_prediction_rows",
            ),
            node(
                named_partial(nodes.score_candidates, arms=ARMS),
                [
                    "prediction_rows",
                    "params:predict",
                    *(f"adapter_{arm}" for arm in ARMS),
                    *REPORTS,
                ],
                ["predictions", "prediction_file"],
                name="score_candidates",
            ),
        ],
        "predict",
    )
