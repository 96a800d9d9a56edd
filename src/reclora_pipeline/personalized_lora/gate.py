"""User gates: map a user representation to mixing weights over the meta-LoRAs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def route(logits: torch.Tensor, temperature: float, top_k: int | None) -> torch.Tensor:
    """Softmax over the last axis at ``temperature``, optionally keeping the top ``k``."""
    weights = torch.softmax(logits / temperature, dim=-1)  # [..., N]
    if top_k is None or top_k == weights.shape[-1]:
        return weights
    top_values, top_index = weights.topk(top_k, dim=-1)  # [..., k]
    # Renormalise the kept weights so the update keeps the scale of dense routing;
    # gradients still flow to the selected experts' gate logits.
    top_values = top_values / top_values.sum(dim=-1, keepdim=True)
    return torch.zeros_like(weights).scatter(-1, top_index, top_values)


class UserGate(nn.Module):
    """``softmax(Linear(ReLU-MLP(LayerNorm(h))) / T)`` with optional top-k routing.

    Args:
        user_dim: size of the user representation ``h``.
        n_experts: number of meta-LoRAs ``N``.
        hidden: width of the gate's hidden layer.
        dropout: dropout after the hidden activation.
        temperature: softmax temperature ``T`` (higher = flatter weights).
        top_k: keep only the ``k`` largest weights, renormalised to sum to one.
    """

    def __init__(
        self,
        user_dim: int,
        n_experts: int,
        hidden: int = 60,
        dropout: float = 0.1,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> None:
        super().__init__()
        if top_k is not None and not 1 <= top_k <= n_experts:
            raise ValueError(f"top_k must be in [1, {n_experts}], got {top_k}")
        self.norm = nn.LayerNorm(user_dim)
        self.hidden = nn.Linear(user_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_experts)
        self.temperature = temperature
        self.top_k = top_k

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores, [b, user_dim] -> [b, N]."""
        return self.out(self.dropout(torch.relu(self.hidden(self.norm(h)))))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Mixing weights, [b, user_dim] -> [b, N], each row summing to one."""
        return route(self.logits(h), self.temperature, self.top_k)


def stacked_gate_weights(gates: Sequence[UserGate], h: torch.Tensor) -> torch.Tensor:
    """All gates of a model at once: [b, user_dim] -> [G, b, N].

    Equal to ``torch.stack([gate(h) for gate in gates])`` (up to float rounding and
    dropout draws) but a dozen batched kernels instead of ~10 small ones per gate. On a
    shared CPU every small op pays a thread wake-up, so this keeps the gate off the
    step time. All gates must share their hyper-parameters (true within one model).
    """
    first = gates[0]
    h = h.to(device=first.out.weight.device, dtype=first.out.weight.dtype)
    # The normalisation statistics depend on h only; each gate keeps its own affine.
    normed = F.layer_norm(h, first.norm.normalized_shape, eps=first.norm.eps)  # [b, D]
    gamma = torch.stack([g.norm.weight for g in gates])[:, None, :]  # [G, 1, D]
    beta = torch.stack([g.norm.bias for g in gates])[:, None, :]  # [G, 1, D]
    w_hidden = torch.stack([g.hidden.weight for g in gates])  # [G, H, D]
    b_hidden = torch.stack([g.hidden.bias for g in gates])[:, None, :]  # [G, 1, H]
    w_out = torch.stack([g.out.weight for g in gates])  # [G, N, H]
    b_out = torch.stack([g.out.bias for g in gates])[:, None, :]  # [G, 1, N]
    z = torch.addcmul(beta, normed[None], gamma)  # [G, b, D]
    hidden = torch.relu(torch.baddbmm(b_hidden, z, w_hidden.transpose(1, 2)))  # [G, b, H]
    hidden = F.dropout(hidden, first.dropout.p, first.training)
    logits = torch.baddbmm(b_out, hidden, w_out.transpose(1, 2))  # [G, b, N]
    return route(logits, first.temperature, first.top_k)
