"""Wiring of the few2many pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from reclora_pipeline.pipelines.few2many import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """Select the train / valid / test subsets, each row with prompts and the CRM's user_repr."""
    return pipeline(
        [
            node(
                nodes.select_llm_samples,
                {
                    "prompts": "prompts",
                    "samples": "samples",
                    "user_repr": "user_repr",
                    "crm_predictions": "crm_predictions",
                    "item_descriptions": "item_descriptions",
                    "users": "users",
                    "language_model_info": "language_model",
                    "params": "params:few2many",
                    "ctr_lens_params": "params:ctr_lens",
                    "item_text_params": "params:item_text",
                    "ingest_params": "params:ingest",
                },
                "few2many_samples",
                name="select_llm_samples",
            ),
            node(
                nodes.summarize_few2many,
                "few2many_samples",
                "few2many_summary",
                name="summarize_few2many",
            ),
        ]
    )
