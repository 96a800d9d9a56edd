"""Wiring of the item_text pipeline."""

from kedro.pipeline import Pipeline, node

from reclora_pipeline.pipelines.item_text import nodes
from reclora_pipeline.pipelines.naming import stage_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """items -> descriptions -> embeddings -> retrieved histories -> summary; the prompt
    recipe (few2many renders the prompts of the rows it selects)."""
    return stage_pipeline(
        [
            node(
                nodes.prepare_language_model,
                "params:item_text",
                "language_model",
                name="prepare_language_model",
            ),
            node(
                nodes.write_prompt_recipe,
                ["language_model", "source_info", "params:item_text"],
                "prompt_recipe",
                name="write_prompt_recipe",
            ),
            node(nodes.describe_catalog_items, "items", "item_descriptions", name="describe_items"),
            node(
                nodes.embed_items,
                ["item_descriptions", "language_model", "params:item_text"],
                "item_embeddings",
                name="embed_items",
            ),
            node(
                nodes.retrieve_histories,
                ["samples", "item_embeddings", "params:item_text"],
                "retrieved_histories",
                name="retrieve_histories",
            ),
            node(
                nodes.summarize_item_text,
                ["item_embeddings", "retrieved_histories", "language_model", "params:item_text"],
                "item_text_summary",
                name="summarize_item_text",
            ),
        ],
        "item_text",
    )
