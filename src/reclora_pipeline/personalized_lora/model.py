"""Wrapper that turns a causal LM into a RecLoRA-personalized model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reclora_pipeline.personalized_lora.config import PersonalizedLoraConfig
from reclora_pipeline.personalized_lora.context import UserContext
from reclora_pipeline.personalized_lora.gate import stacked_gate_weights
from reclora_pipeline.personalized_lora.injection import (
    inject_personalized_layers,
    iter_personalized_layers,
    remove_personalized_layers,
)
from reclora_pipeline.personalized_lora.layer import PersonalizedLoraLinear
from reclora_pipeline.personalized_lora.persistence import (
    AdapterMismatchError,
    base_model_signature,
    check_base_compatible,
    check_state_matches,
    read_adapter_config,
    read_adapter_weights,
    save_adapter,
)


class PersonalizedLoraModel(nn.Module):
    """A frozen base model whose target linears carry user-gated meta-LoRA banks.

    Every call needs one user representation per batch row, given either by
    ``model(..., user_repr=h)`` or by ``with model.user_representations(h): model(...)``.
    Unknown attributes (``config``, ``device`` ...) are looked up on the base model.
    Gradient checkpointing of the base model is not supported: its recomputation runs
    after the call has cleared the user representations.
    """

    def __init__(self, base_model: nn.Module, config: PersonalizedLoraConfig) -> None:
        super().__init__()
        self.base_model = base_model
        self.personalized_config = config
        self.user_context = UserContext()
        # Taken now, from the plain base model: the builder refuses a model with adapters
        # injected, and a ZeRO-3 engine later partitions the weights it hashes.
        self.base_signature = base_model_signature(base_model, config.target_modules)
        base_model.requires_grad_(False)
        self.adapted_module_names = inject_personalized_layers(
            base_model, config, self.user_context
        )
        # Plain list (the layers are registered under base_model already).
        self._layers = [layer for _, layer in self.personalized_layers()]
        for index, layer in enumerate(self._layers):
            layer.gate_index = index

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_model":  # not registered yet: avoid infinite recursion
                raise
            return getattr(self.base_model, name)

    # -- user representations -------------------------------------------------------------

    def user_representations(self, user_repr: torch.Tensor) -> AbstractContextManager:
        """Context manager activating ``user_repr`` [b, user_dim] for calls inside it."""
        expected = self.personalized_config.user_dim
        if user_repr.dim() == 2 and user_repr.shape[1] != expected:
            raise ValueError(
                f"user representations have size {user_repr.shape[1]}, config.user_dim is "
                f"{expected}"
            )
        return self.user_context.use(user_repr)

    @contextmanager
    def _personalized_call(self, user_repr: torch.Tensor | None) -> Iterator[None]:
        """Activate ``user_repr`` (if given) and all gates' weights for one base call."""
        with ExitStack() as stack:
            if user_repr is not None:
                stack.enter_context(self.user_representations(user_repr))
            if self.user_context.is_set and self._layers:
                weights = stacked_gate_weights(
                    [layer.gate for layer in self._layers], self.user_context.get()
                )  # [G, b, N]
                stack.enter_context(self.user_context.use_gate_weights(weights))
            yield

    def forward(self, *args: Any, user_repr: torch.Tensor | None = None, **kwargs: Any) -> Any:
        """Base model forward; ``user_repr`` [b, user_dim] unless a context is active."""
        with self._personalized_call(user_repr):
            return self.base_model(*args, **kwargs)

    @torch.no_grad()
    def generate(self, *args: Any, user_repr: torch.Tensor | None = None, **kwargs: Any) -> Any:
        """Base model ``generate`` with the batch's user representations active."""
        # Gate weights are computed once: parameters cannot change during generation.
        with self._personalized_call(user_repr):
            return self.base_model.generate(*args, **kwargs)

    # -- parameters -----------------------------------------------------------------------

    def personalized_layers(self) -> Iterator[tuple[str, PersonalizedLoraLinear]]:
        """(name in the base model, layer) for every adapted module."""
        return iter_personalized_layers(self.base_model)

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """LoRA banks and gates keyed by their name in the base model (no base weights)."""
        state = {}
        for layer_name, layer in self.personalized_layers():
            for param_name, param in layer.named_parameters():
                if not param_name.startswith("base_layer."):
                    state[f"{layer_name}.{param_name}"] = param
        return state

    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        """(trainable, total) parameter counts."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters())
        return trainable, total

    def trainable_parameters_summary(self) -> str:
        """``trainable params: X || all params: Y || trainable%: Z``."""
        trainable, total = self.get_nb_trainable_parameters()
        return (
            f"trainable params: {trainable:,d} || all params: {total:,d} || "
            f"trainable%: {100 * trainable / total:.4f}"
        )

    def print_trainable_parameters(self) -> None:
        """Print :meth:`trainable_parameters_summary`."""
        print(self.trainable_parameters_summary())

    def unload(self) -> nn.Module:
        """Remove the adapters, returning the base model with its original linears.

        The base parameters stay frozen (``requires_grad=False``).
        """
        remove_personalized_layers(self.base_model)
        self._layers = []
        return self.base_model

    # -- persistence ----------------------------------------------------------------------

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``adapter_config.json`` and ``adapter_model.safetensors`` to ``folder``."""
        return save_adapter(
            folder, self.personalized_config, self.base_signature, self.adapter_state_dict()
        )

    @classmethod
    def from_pretrained(
        cls, base_model: nn.Module, folder: str | Path, *, is_trainable: bool = False
    ) -> PersonalizedLoraModel:
        """Wrap ``base_model`` and load the adapter saved in ``folder``.

        Raises :class:`~.persistence.AdapterMismatchError` when the adapter was saved for
        a different base model. Without ``is_trainable`` the adapter is frozen and the
        model put in eval mode (inference use).
        """
        config, saved_signature = read_adapter_config(folder)
        # Check before wrapping: injection edits base_model in place.
        current = base_model_signature(base_model, config.target_modules)
        check_base_compatible(saved_signature, current, source=folder)
        saved_state = read_adapter_weights(folder)
        model = cls(base_model, config)
        own_state = model.adapter_state_dict()
        try:
            check_state_matches(saved_state, own_state)
        except AdapterMismatchError:
            model.unload()  # hand the caller's base model back without adapters
            raise
        with torch.no_grad():
            for name, param in own_state.items():
                param.copy_(saved_state[name])
        if not is_trainable:
            for param in own_state.values():
                param.requires_grad_(False)
            model.eval()
        return model


def get_personalized_model(
    base_model: nn.Module, config: PersonalizedLoraConfig | None = None
) -> PersonalizedLoraModel:
    """Freeze ``base_model`` and wrap it with fresh meta-LoRA banks (modifies it in place)."""
    return PersonalizedLoraModel(base_model, config or PersonalizedLoraConfig())
