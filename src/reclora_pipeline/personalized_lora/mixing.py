"""Per-sample mixing of a bank of meta-LoRAs (pure tensor functions).

Shapes: ``x`` [b, t, in], ``weights`` [b, N], ``bank_a`` [N, in, r], ``bank_b`` [N, r, out].
Both functions return ``base + delta`` ([b, t, out]); ``base=None`` means zeros.
"""

from __future__ import annotations

import torch


def parameter_mixing(
    x: torch.Tensor,
    weights: torch.Tensor,
    bank_a: torch.Tensor,
    bank_b: torch.Tensor,
    scaling: float,
    base: torch.Tensor | None = None,
) -> torch.Tensor:
    """RecLoRA reference mixing: ``delta = s * x (sum_k w_k A_k)(sum_k w_k B_k)``.

    Mixing the factors first keeps the per-token work at one rank-r LoRA, so the cost
    is that of a vanilla LoRA plus two tiny [b, N] x [N, ...] contractions.
    """
    mixed_a = torch.einsum("bn,nir->bir", weights, bank_a)  # [b, in, r]
    # Folding the scale into the small mixed B avoids a pass over the [b, t, out] output.
    mixed_b = torch.einsum("bn,nro->bro", weights * scaling, bank_b)  # [b, r, out]
    projected = torch.bmm(x, mixed_a)  # [b, t, r]
    if base is None:
        return torch.bmm(projected, mixed_b)  # [b, t, out]
    # baddbmm adds the update into the base output in one kernel.
    return torch.baddbmm(base, projected, mixed_b)  # [b, t, out]


def output_mixing(
    x: torch.Tensor,
    weights: torch.Tensor,
    bank_a: torch.Tensor,
    bank_b: torch.Tensor,
    scaling: float,
    base: torch.Tensor | None = None,
) -> torch.Tensor:
    """Paper equation: ``delta = s * sum_k w_k (x A_k B_k)``.

    Computed as one wide matmul: ``x [A_1 .. A_N]`` gives all experts' rank-r
    projections; scaling block k by ``w_k`` and multiplying by the stacked
    ``[B_1; ..; B_N]`` sums the experts' outputs.
    """
    n, d_in, r = bank_a.shape
    b, t, _ = x.shape
    stacked_a = bank_a.permute(1, 0, 2).reshape(d_in, n * r)  # [in, N*r], block k = A_k
    stacked_b = bank_b.reshape(n * r, -1)  # [N*r, out], block k = B_k
    projected = torch.matmul(x, stacked_a)  # [b, t, N*r]
    block_weights = (weights * scaling).repeat_interleave(r, dim=-1)  # [b, N*r]
    projected = projected * block_weights[:, None, :]  # [b, t, N*r]
    if base is None:
        return torch.matmul(projected, stacked_b)  # [b, t, out]
    flat = torch.addmm(base.reshape(b * t, -1), projected.reshape(b * t, n * r), stacked_b)
    return flat.view(b, t, -1)  # [b, t, out]
