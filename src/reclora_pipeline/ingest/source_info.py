"""Facts about the source that later stages need: its format and what follows from it."""

from __future__ import annotations

from typing import Any

from reclora_pipeline.ingest.settings import IngestSettings

# Dataset family per format: it picks the prompt template (books for GoodReads).
FAMILIES = {"goodreads": "books"}
DEFAULT_FAMILY = "movies"


def source_info(settings: IngestSettings) -> dict[str, Any]:
    """``format``, ``family`` (movies / books), whether user profiles are ML-1M codes, and
    the history rule of the samples (``min_history``, ``max_history``: predict rebuilds
    histories with it)."""
    return {
        "format": settings.format,
        "family": FAMILIES.get(settings.format, DEFAULT_FAMILY),
        "ml1m_codes": settings.format == "ml-1m",
        "min_history": settings.min_history,
        "max_history": settings.max_history,
    }
