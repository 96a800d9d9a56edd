"""The predict pipeline: a candidates file scored by a trained arm (not part of ``full``)."""

from reclora_pipeline.pipelines.predict.pipeline import create_pipeline

__all__ = ["create_pipeline"]
