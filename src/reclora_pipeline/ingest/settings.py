"""Settings of the ingest stage (the ``ingest`` parameter group)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from reclora_pipeline.errors import ParameterError, SettingError
from reclora_pipeline.ingest.labels import LabelRule
from reclora_pipeline.typed_settings import check_fields, setting

SourceFormat = Literal["recbole", "ml-100k", "ml-1m", "ml-latest", "goodreads"]


@dataclass(frozen=True)
class IngestSettings:
    """Which source files to read and how to clean, label and split them."""

    format: SourceFormat = "recbole"
    # None = the MovieLens-100K embedded in the recbole package.
    path: str | None = None
    k_core: int = setting(5, minimum=1)
    # None = the format's own scale (readers.RATING_SCALES).
    rating_scale: tuple[float, float] | None = None
    # None = the format's rule (labels.DEFAULT_LABEL_RULES).
    label_rule: str | None = None
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    min_history: int = setting(5, minimum=1)
    max_history: int = setting(60, minimum=1)
    memory_limit: str = "4GB"

    def __post_init__(self) -> None:
        check_fields(self)
        if self.path is not None and not self.path.strip():
            object.__setattr__(self, "path", None)
        if self.rating_scale is not None and not self.rating_scale[0] < self.rating_scale[1]:
            raise SettingError("rating_scale", list(self.rating_scale), "[min, max] with min < max")
        if self.label_rule:
            try:
                LabelRule.parse(self.label_rule)
            except ParameterError:
                raise SettingError(
                    "label_rule", self.label_rule, "'>= <number>' or '> <number>', or null"
                ) from None
        ratios = self.split_ratios
        if any(r < 0 for r in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
            raise SettingError(
                "split_ratios",
                list(ratios),
                "three non-negative fractions (train, valid, test) summing to 1",
            )
        if self.max_history < self.min_history:
            raise SettingError(
                "max_history", self.max_history, f"an integer >= min_history ({self.min_history})"
            )
