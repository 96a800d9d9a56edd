"""The item_text pipeline: item descriptions, embeddings, retrieved histories and prompts."""

from reclora_pipeline.pipelines.item_text.pipeline import create_pipeline

__all__ = ["create_pipeline"]
