"""Binary like/dislike labels from ratings, by each dataset's rule."""

from __future__ import annotations

import re
from dataclasses import dataclass

from reclora_pipeline.errors import ParameterError

# The paper's rules: rating >= 4 on MovieLens-1M and GoodReads, rating > 3.0 on ML-25M.
DEFAULT_LABEL_RULES = {
    "recbole": ">= 4",
    "ml-100k": ">= 4",
    "ml-1m": ">= 4",
    "goodreads": ">= 4",
    "ml-latest": "> 3.0",
}
_RULE = re.compile(r"^\s*(>=|>)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class LabelRule:
    """``label = 1`` when ``rating <operator> threshold``."""

    operator: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> LabelRule:
        """Parse a rule such as ``">= 4"`` or ``"> 3.0"``."""
        match = _RULE.match(str(text))
        if not match:
            raise ParameterError(
                f"invalid ingest.label_rule {text!r}: expected '>= <number>' or '> <number>'"
            )
        return cls(match.group(1), float(match.group(2)))

    def sql(self, column: str = "rating") -> str:
        """The rule as a SQL boolean expression over ``column``."""
        return f"({column} {self.operator} {self.threshold!r})"

    def __str__(self) -> str:
        return f"rating {self.operator} {self.threshold:g}"


def label_rule_for(data_format: str, override: str | None = None) -> LabelRule:
    """The rule to use: ``override`` when given, else the dataset format's default."""
    if override:
        return LabelRule.parse(override)
    if data_format not in DEFAULT_LABEL_RULES:
        raise ParameterError(
            f"no default label rule for format {data_format!r}; set ingest.label_rule "
            f"or use one of {sorted(DEFAULT_LABEL_RULES)}"
        )
    return LabelRule.parse(DEFAULT_LABEL_RULES[data_format])
