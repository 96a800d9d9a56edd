"""The few2many pipeline: the LLM's few training samples and fixed valid / test subsets."""

from reclora_pipeline.pipelines.few2many.pipeline import create_pipeline

__all__ = ["create_pipeline"]
