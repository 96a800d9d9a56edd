"""Holder of the current batch's user representations, shared by all adapted layers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class MissingUserRepresentationError(RuntimeError):
    """An adapted layer ran without user representations set for the batch."""


class UserContext:
    """Mutable slot read by every personalized layer of one model.

    Layers cannot receive ``h`` through the base model's ``forward`` signature, so the
    wrapper parks it here for the duration of one call and clears it afterwards. It may
    also park the gate weights of all layers, computed in one go for that call.
    """

    def __init__(self) -> None:
        self._value: torch.Tensor | None = None
        self._gate_weights: torch.Tensor | None = None  # [G, b, N]

    @property
    def is_set(self) -> bool:
        """Whether a user representation is currently active."""
        return self._value is not None

    def get(self) -> torch.Tensor:
        """The active user representations [b, user_dim]; raises when none is set."""
        if self._value is None:
            raise MissingUserRepresentationError(
                "personalized LoRA layer called without user representations: wrap the call "
                "in `with model.user_representations(h): ...` or pass `user_repr=h` to forward"
            )
        return self._value

    def gate_weights(self, index: int | None) -> torch.Tensor | None:
        """Precomputed weights [b, N] of gate ``index``, or None (layer computes its own)."""
        if index is None or self._gate_weights is None:
            return None
        return self._gate_weights[index]

    @contextmanager
    def use(self, value: torch.Tensor) -> Iterator[torch.Tensor]:
        """Activate ``value`` inside the block; restores the previous state on any exit."""
        if value.dim() != 2:
            raise ValueError(
                f"user representations must be [batch, user_dim], got shape {tuple(value.shape)}"
            )
        previous = self._value, self._gate_weights
        # Weights computed for other users must not be seen inside this block.
        self._value, self._gate_weights = value, None
        try:
            yield value
        finally:
            # Restoring (not just clearing) keeps nested blocks correct; at top level the
            # previous state is None, so no stale tensor survives an exception.
            self._value, self._gate_weights = previous

    @contextmanager
    def use_gate_weights(self, weights: torch.Tensor) -> Iterator[torch.Tensor]:
        """Serve ``weights`` [G, b, N] (computed from the active users) inside the block."""
        previous = self._gate_weights
        self._gate_weights = weights
        try:
            yield weights
        finally:
            self._gate_weights = previous
