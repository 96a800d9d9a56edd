"""Ingest library: read rating data, clean it and build samples with histories (no Kedro)."""
