"""The ingest pipeline: raw rating files -> cleaned DuckDB tables and samples with histories."""

from reclora_pipeline.pipelines.ingest.pipeline import create_pipeline

__all__ = ["create_pipeline"]
