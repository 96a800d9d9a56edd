"""Settings of the few2many stage (the ``few2many`` parameter group)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reclora_pipeline.typed_settings import check_fields, setting

Strategy = Literal["random", "stratified_user", "crm_uncertain"]


@dataclass(frozen=True)
class Few2ManySettings:
    """How many samples each LLM subset holds and how the training ones are drawn."""

    # Train rows only; valid and test are always a seeded uniform draw (same rows for all).
    strategy: Strategy = "random"
    n_train: int = setting(256, minimum=1)
    n_valid: int = setting(200, minimum=1)
    n_test: int = setting(500, minimum=1)
    seed: int = setting(0, minimum=0)

    def __post_init__(self) -> None:
        check_fields(self)

    def subsets(self) -> dict[str, tuple[int, str]]:
        """Subset name -> (its size, the strategy that draws it); each comes from its split."""
        return {"train": (self.n_train, self.strategy), "valid": (self.n_valid, "random"),
                "test": (self.n_test, "random")}  # fmt: skip
