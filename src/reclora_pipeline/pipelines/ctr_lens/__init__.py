"""The ctr_lens pipeline: CTR models trained on the full train split, user representations."""

from reclora_pipeline.pipelines.ctr_lens.pipeline import create_pipeline

__all__ = ["create_pipeline"]
