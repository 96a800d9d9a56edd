"""Wiring of the few2many pipeline."""

from kedro.pipeline import Pipeline, node

from reclora_pipeline.ctr.settings import TRAINED_CRMS
from reclora_pipeline.pipelines.few2many import nodes
from reclora_pipeline.pipelines.naming import named_partial, stage_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """Select the train / valid / test subsets; compute the CRMs' outputs and render the
    prompts of those rows only."""
    # The trained CRMs, rebuilt from the lens recipe; checkpoints go in positionally, in
    # TRAINED_CRMS order (the nodes' ``names``).
    lens = ["samples", "ctr_features", "ctr_vocabulary", "lens_recipe"]
    checkpoints = [f"ctr_checkpoint_{name}" for name in TRAINED_CRMS]
    return stage_pipeline(
        [
            node(
                named_partial(nodes.draw_llm_subsets, names=TRAINED_CRMS),
                [*lens, "params:few2many", *checkpoints],
                "few2many_selection",
                name="draw_llm_subsets",
            ),
            node(
                named_partial(nodes.compute_lens_outputs, names=TRAINED_CRMS),
                ["few2many_selection", *lens[1:], *checkpoints],
                ["user_repr", "crm_predictions"],
                name="compute_lens_outputs",
            ),
            node(
                nodes.select_llm_samples,
                [
                    "few2many_selection",
                    "samples",
                    "retrieved_histories",
                    "user_repr",
                    "item_descriptions",
                    "users",
                    "prompt_recipe",
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
