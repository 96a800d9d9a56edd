"""The evaluation pipeline: every model scored on the same test rows, reported and tracked."""

from reclora_pipeline.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
