"""Wiring of the few2many pipeline."""

from kedro.pipeline import Pipeline, node

from reclora_pipeline.pipelines.few2many import nodes
from reclora_pipeline.pipelines.naming import stage_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """Select the train / valid / test subsets, each row with prompts and the lens's outputs."""
    return stage_pipeline(
        [
            node(
                nodes.select_llm_samples,
                [
                    "prompts",
                    "samples",
                    "user_repr",
                    "item_descriptions",
                    "users",
                    "prompt_recipe",
                    "params:few2many",
                ],
                "few2many_samples",
                name="select_llm_samples",
            ),
            node(
                nodes.summarize_few2many,
                "few2many_samples",
                "few2many_summary",
                name="summarize_few2many",
            ),
        ],
        "few2many",
    )
