"""A frozen linear layer plus a user-gated bank of meta-LoRAs."""

from __future__ import annotations

import math

import torch
from torch import nn

from reclora_pipeline.personalized_lora.config import PersonalizedLoraConfig
from reclora_pipeline.personalized_lora.context import UserContext
from reclora_pipeline.personalized_lora.gate import UserGate
from reclora_pipeline.personalized_lora.mixing import output_mixing, parameter_mixing

_MIXERS = {"parameter": parameter_mixing, "output": output_mixing}


class PersonalizedLoraLinear(nn.Module):
    """``y = base(x) + personalized low-rank update``, weights chosen per sample.

    The bank is stored as ``lora_A`` [N, in, r] and ``lora_B`` [N, r, out] so that
    mixing over experts is a contraction on the leading axis. ``lora_B`` starts at
    zero, so a freshly wrapped layer computes exactly the base layer.
    """

    def __init__(
        self, base_layer: nn.Linear, config: PersonalizedLoraConfig, context: UserContext
    ) -> None:
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f"expected nn.Linear, got {type(base_layer).__name__}")
        self.base_layer = base_layer
        self.base_layer.requires_grad_(False)
        self.in_features = base_layer.in_features
        self.out_features = base_layer.out_features
        self.n_experts = config.n_experts
        self.r = config.r
        self.scaling = config.scaling
        self.mixing = config.mixing
        self._mix = _MIXERS[config.mixing]
        # Plain attribute (not a submodule): shared by every layer of the model.
        self._context = context
        # Position among the model's gates when the model precomputes all gate weights
        # at once (set by the model); None = this layer always runs its own gate.
        self.gate_index: int | None = None

        weight = base_layer.weight
        # An 8-bit base (bitsandbytes) keeps int8 weights: its adapters train in fp32.
        dtype = weight.dtype if weight.is_floating_point() else torch.float32
        factory = {"device": weight.device, "dtype": dtype}
        n, r = config.n_experts, config.r
        self.lora_A = nn.Parameter(torch.empty(n, self.in_features, r, **factory))
        self.lora_B = nn.Parameter(torch.zeros(n, r, self.out_features, **factory))
        self.gate = UserGate(
            config.user_dim,
            n,
            hidden=config.gate_hidden,
            dropout=config.gate_dropout,
            temperature=config.temperature,
            top_k=config.gate_top_k,
        ).to(**factory)
        self.lora_dropout: nn.Module = (
            nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        )
        self.reset_lora_parameters()

    @torch.no_grad()
    def reset_lora_parameters(self) -> None:
        """Kaiming-uniform A (as nn.Linear does, fan_in = in_features), zero B."""
        n, d_in, r = self.lora_A.shape
        # Initialise as N*r rows of an [r, in] matrix so kaiming sees fan_in = in_features.
        rows = torch.empty(n * r, d_in, device=self.lora_A.device, dtype=self.lora_A.dtype)
        nn.init.kaiming_uniform_(rows, a=math.sqrt(5))
        self.lora_A.copy_(rows.view(n, r, d_in).transpose(1, 2))
        self.lora_B.zero_()

    def mixing_weights(self, user_repr: torch.Tensor) -> torch.Tensor:
        """Gate output for a batch of users, [b, user_dim] -> [b, N]."""
        return self.gate(user_repr.to(device=self.lora_A.device, dtype=self.lora_A.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [b, ..., in] -> [b, ..., out]; row i is personalized by user i."""
        user_repr = self._context.get()  # [b, user_dim]
        if x.dim() < 2 or user_repr.shape[0] != x.shape[0]:
            raise ValueError(
                f"user representations have batch {user_repr.shape[0]} but the layer input "
                f"has shape {tuple(x.shape)}: one user representation per batch row is needed"
            )
        base_out = self.base_layer(x)  # [b, ..., out]
        batch = x.shape[0]
        weights = self._context.gate_weights(self.gate_index)  # [b, N] or None
        if weights is None:
            weights = self.mixing_weights(user_repr)  # [b, N]
        lora_in = self.lora_dropout(x.to(self.lora_A.dtype)).reshape(batch, -1, self.in_features)
        result = self._mix(
            lora_in,  # [b, t, in]
            weights,
            self.lora_A,
            self.lora_B,
            self.scaling,
            base=base_out.reshape(batch, -1, self.out_features).to(self.lora_A.dtype),
        )  # [b, t, out]
        return result.to(base_out.dtype).view(base_out.shape)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_features}, out={self.out_features}, experts={self.n_experts}, "
            f"r={self.r}, scaling={self.scaling:g}, mixing={self.mixing}"
        )
