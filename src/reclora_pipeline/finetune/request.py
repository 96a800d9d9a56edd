"""One arm's fine-tune request: built once by the node, read back by every launched process."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reclora_pipeline.finetune.arms import check_arm
from reclora_pipeline.finetune.settings import FinetuneSettings, FinetuneStageSettings
from reclora_pipeline.personalized_lora import PersonalizedLoraConfig


@dataclass(frozen=True)
class FinetuneRequest:
    """Everything that trains ``arm`` besides the Few2Many rows."""

    arm: str
    # Hub id or local folder of the base causal LM.
    model: str
    # Users in the dataset (the size of reclora_no_lens's user-id embedding).
    n_users: int
    training: FinetuneSettings
    # The LoRA bank, its gate sized for the CRM's user representation.
    lora: PersonalizedLoraConfig
    # Where this arm's training checkpoints go; None keeps none.
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        check_arm(self.arm)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the launcher's request file)."""
        return {
            "arm": self.arm,
            "model": self.model,
            "n_users": self.n_users,
            "training": dataclasses.asdict(self.training),
            "lora": self.lora.to_dict(),
            "checkpoint_dir": self.checkpoint_dir,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneRequest:
        """The request :meth:`to_dict` wrote."""
        return cls(
            arm=data["arm"],
            model=data["model"],
            n_users=int(data["n_users"]),
            training=FinetuneSettings(**data["training"]),
            lora=PersonalizedLoraConfig.from_dict(data["lora"]),
            checkpoint_dir=data.get("checkpoint_dir"),
        )


def build_request(
    arm: str, settings: FinetuneStageSettings, prepared_model: str, n_users: int, user_dim: int
) -> FinetuneRequest:
    """The request for ``arm``: ``finetune.model`` or the model item_text prepared."""
    folder = settings.training.checkpoint_folder
    return FinetuneRequest(
        arm=arm,
        model=settings.model or prepared_model,
        n_users=n_users,
        training=settings.training,
        lora=dataclasses.replace(settings.lora, user_dim=user_dim),
        checkpoint_dir=str((Path(folder) / arm).resolve()) if folder else None,
    )
