"""The experiment's arms: which adapter wraps the LLM and what feeds its user gate.

=====================  ==========================  =====================================
arm                    adapter                     gate input
=====================  ==========================  =====================================
reclora                personalized LoRA bank      CRM user representation (``user_repr``)
vanilla_lora           peft LoRA (one, shared)     none (ReLLa: retrieved-history prompts)
tallrec                peft LoRA (one, shared)     none; recency prompts (the last K_text
                                                   items: the TALLRec baseline)
reclora_no_few2many    personalized LoRA bank      ``user_repr`` of the lens CRM retrained
                                                   on the LLM's n_train rows alone
reclora_no_retriever   personalized LoRA bank      ``user_repr``; recency prompts (built
                                                   without the long-sequence retriever)
reclora_no_lens        personalized LoRA bank      a learned per-user vector (``user_ids``),
                                                   zero for users without training rows
=====================  ==========================  =====================================

reclora_no_lens is not a lens of any kind: it asks what a gate learns from user identity
alone. Its vectors start at zero, so a user the train rows never showed gets the gate of
the average user rather than a random one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.personalized_lora import (
    PersonalizedLoraConfig,
    get_personalized_model,
    get_vanilla_lora_model,
)
from reclora_pipeline.personalized_lora.injection import find_target_names
from reclora_pipeline.personalized_lora.persistence import base_model_signature

ARMS = (
    "reclora",
    "vanilla_lora",
    "tallrec",
    "reclora_no_few2many",
    "reclora_no_retriever",
    "reclora_no_lens",
)
# Keys of a collated batch that the LLM takes (labels stay out: the loss is ours).
MODEL_INPUTS = ("input_ids", "attention_mask", "position_ids")


@dataclass(frozen=True)
class ArmSpec:
    """How an arm is built: personalized bank or not, what drives its gate, which prompts."""

    personalized: bool
    user_input: str | None  # "user_repr", "user_ids" or None
    # The few2many_samples column of its prompts: retrieved history or the most recent items.
    prompt_column: str = "prompt"
    # Whose user_repr the gate reads: the lens trained on the full train split ("full") or
    # the one retrained on the LLM's train rows alone ("few_shot").
    lens: Literal["full", "few_shot"] = "full"


ARM_SPECS = {
    "reclora": ArmSpec(personalized=True, user_input="user_repr"),
    "vanilla_lora": ArmSpec(personalized=False, user_input=None),
    "tallrec": ArmSpec(personalized=False, user_input=None, prompt_column="recency_prompt"),
    "reclora_no_few2many": ArmSpec(personalized=True, user_input="user_repr", lens="few_shot"),
    "reclora_no_retriever": ArmSpec(
        personalized=True, user_input="user_repr", prompt_column="recency_prompt"
    ),
    "reclora_no_lens": ArmSpec(personalized=True, user_input="user_ids"),
}


def check_arm(arm: str) -> ArmSpec:
    """The spec of ``arm``, or a :class:`ParameterError` listing the accepted arms."""
    if arm not in ARM_SPECS:
        raise ParameterError(f"unknown arm {arm!r}; accepted arms: {list(ARMS)}")
    return ARM_SPECS[arm]


class ArmModel(nn.Module):
    """An adapted LLM called uniformly as ``arm_model(batch, user_repr=, user_ids=)``.

    Each arm uses the user input it needs and ignores the other, so a trainer can pass
    both: vanilla LoRA ignores both, reclora and reclora_no_retriever need
    ``user_repr`` [b, user_dim], reclora_no_lens needs ``user_ids`` [b] (1..n_users;
    0 is the shared row for users without an id, as in the CTR features).
    """

    def __init__(
        self,
        arm: str,
        model: nn.Module,
        base_signature: dict[str, Any],
        lora_config: PersonalizedLoraConfig,
        user_embedding: nn.Embedding | None = None,
    ) -> None:
        super().__init__()
        self.spec = check_arm(arm)
        if (self.spec.user_input == "user_ids") != (user_embedding is not None):
            raise ValueError(f"arm {arm!r} needs a user embedding exactly when it uses user ids")
        self.arm = arm
        self.model = model
        self.user_embedding = user_embedding
        # Describes the base model the adapter was built on; written with the adapter.
        self.base_signature = base_signature
        self.lora_config = lora_config

    @property
    def user_input(self) -> str | None:
        """The keyword this arm reads: "user_repr", "user_ids" or None."""
        return self.spec.user_input

    def gate_input(
        self, user_repr: torch.Tensor | None, user_ids: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The [b, user_dim] tensor fed to the gates (None for vanilla LoRA)."""
        if self.spec.user_input is None:
            return None
        if self.spec.user_input == "user_repr":
            if user_repr is None:
                raise ValueError(f"arm {self.arm!r} needs user_repr [batch, user_dim]")
            return user_repr
        if user_ids is None:
            raise ValueError(f"arm {self.arm!r} needs user_ids [batch]")
        rows = self.user_embedding.num_embeddings
        if user_ids.numel() and (int(user_ids.min()) < 0 or int(user_ids.max()) >= rows):
            raise ValueError(
                f"user ids must be in [0, {rows - 1}] (0 = unknown user), got "
                f"[{int(user_ids.min())}, {int(user_ids.max())}]"
            )
        return self.user_embedding(user_ids.to(self.user_embedding.weight.device).long())

    def forward(
        self,
        batch: Mapping[str, torch.Tensor],
        user_repr: torch.Tensor | None = None,
        user_ids: torch.Tensor | None = None,
        **model_kwargs: Any,
    ) -> Any:
        """The wrapped model's output on ``batch``'s input ids, masks and positions."""
        inputs = {key: batch[key] for key in MODEL_INPUTS if key in batch}
        gate = self.gate_input(user_repr, user_ids)
        if gate is not None:
            model_kwargs["user_repr"] = gate
        return self.model(**inputs, **model_kwargs)


def check_targets(base_model: nn.Module, target_modules: tuple[str, ...]) -> None:
    """Raise :class:`ParameterError` when no module of ``base_model`` is a target."""
    if find_target_names(base_model, target_modules):
        return
    linears = sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in base_model.named_modules()
            if name and isinstance(module, nn.Linear)
        }
    )
    raise ParameterError(
        f"LoRA target_modules {list(target_modules)} match no linear layer of "
        f"{type(base_model).__name__}; its linear layers include {linears[:8]}"
    )


def build_arm(
    arm: str, base_model: nn.Module, lora_config: PersonalizedLoraConfig, n_users: int = 0
) -> ArmModel:
    """Wrap ``base_model`` (frozen and modified in place) with fresh adapters of ``arm``.

    ``n_users`` sizes the user-id embedding of reclora_no_lens (ids 1..n_users plus
    row 0 for unknown users); the other arms ignore it.
    """
    spec = check_arm(arm)
    check_targets(base_model, lora_config.target_modules)
    signature = base_model_signature(base_model, lora_config.target_modules)
    embedding = None
    if spec.user_input == "user_ids":
        if n_users < 1:
            raise ParameterError(f"arm {arm!r} needs n_users >= 1, got {n_users}")
        embedding = nn.Embedding(n_users + 1, lora_config.user_dim)
        # Zero = the average user's gate for everyone the train rows do not show (a random
        # start would give those users a random gate that training never corrects).
        nn.init.zeros_(embedding.weight)
    if spec.personalized:
        model = get_personalized_model(base_model, lora_config)
    else:
        model = get_vanilla_lora_model(base_model, lora_config)
    return ArmModel(arm, model, signature, lora_config, embedding)


def trainable_parameters(arm_model: nn.Module) -> list[nn.Parameter]:
    """Parameters the optimizer should update (adapters, gates, user embedding)."""
    return [param for param in arm_model.parameters() if param.requires_grad]
