"""Mixing functions against straightforward per-sample, per-expert loops."""

import pytest
import torch

from reclora_pipeline.personalized_lora import output_mixing, parameter_mixing

B, T, D_IN, D_OUT, N, R, SCALE = 3, 5, 12, 10, 4, 2, 2.0


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, D_IN, generator=g, dtype=torch.float64)
    w = torch.softmax(torch.randn(B, N, generator=g, dtype=torch.float64), -1)
    a = torch.randn(N, D_IN, R, generator=g, dtype=torch.float64)
    b = torch.randn(N, R, D_OUT, generator=g, dtype=torch.float64)
    return x, w, a, b


def _loop_parameter(x, w, a, b):
    rows = []
    for i in range(B):
        a_u = sum(w[i, k] * a[k] for k in range(N))
        b_u = sum(w[i, k] * b[k] for k in range(N))
        rows.append(SCALE * x[i] @ a_u @ b_u)
    return torch.stack(rows)


def _loop_output(x, w, a, b):
    rows = [sum(w[i, k] * SCALE * x[i] @ a[k] @ b[k] for k in range(N)) for i in range(B)]
    return torch.stack(rows)


def test_parameter_mixing_matches_the_loop():
    x, w, a, b = _inputs()
    torch.testing.assert_close(parameter_mixing(x, w, a, b, SCALE), _loop_parameter(x, w, a, b))


def test_output_mixing_matches_the_loop():
    x, w, a, b = _inputs()
    torch.testing.assert_close(output_mixing(x, w, a, b, SCALE), _loop_output(x, w, a, b))


@pytest.mark.parametrize("mix", [parameter_mixing, output_mixing])
def test_base_is_added(mix):
    x, w, a, b = _inputs()
    base = torch.randn(B, T, D_OUT, dtype=torch.float64)
    torch.testing.assert_close(mix(x, w, a, b, SCALE, base=base), base + mix(x, w, a, b, SCALE))


def test_variants_agree_on_one_hot_weights_and_differ_otherwise():
    x, w, a, b = _inputs()
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 3, 1]), N).to(x.dtype)
    torch.testing.assert_close(
        parameter_mixing(x, one_hot, a, b, SCALE), output_mixing(x, one_hot, a, b, SCALE)
    )
    gap = (parameter_mixing(x, w, a, b, SCALE) - output_mixing(x, w, a, b, SCALE)).abs().max()
    assert gap > 1e-3


@pytest.mark.parametrize("mix", [parameter_mixing, output_mixing])
def test_single_expert_is_plain_lora(mix):
    x, _, a, b = _inputs()
    ones = torch.ones(B, 1, dtype=x.dtype)
    torch.testing.assert_close(mix(x, ones, a[:1], b[:1], SCALE), SCALE * x @ a[0] @ b[0])
