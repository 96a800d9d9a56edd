"""PersonalizedLoraLinear on its own: init, errors, shapes, top-k gradients."""

import math

import pytest
import torch
from torch import nn

from reclora_pipeline.personalized_lora import (
    MissingUserRepresentationError,
    PersonalizedLoraConfig,
    PersonalizedLoraLinear,
    UserContext,
)

USER_DIM = 16


def _layer(**overrides) -> tuple[PersonalizedLoraLinear, UserContext]:
    torch.manual_seed(0)
    config = PersonalizedLoraConfig(user_dim=USER_DIM, gate_dropout=0.0, **overrides)
    context = UserContext()
    return PersonalizedLoraLinear(nn.Linear(24, 20), config, context), context


def test_initial_bank_kaiming_a_zero_b_and_frozen_base():
    layer, _ = _layer()
    assert layer.lora_A.shape == (8, 24, 8) and layer.lora_B.shape == (8, 8, 20)
    assert torch.count_nonzero(layer.lora_B) == 0
    bound = 1 / math.sqrt(24)  # kaiming_uniform(a=sqrt(5)) on fan_in = in_features
    assert layer.lora_A.abs().max() <= bound
    assert layer.lora_A.abs().max() > 0.8 * bound
    assert not any(p.requires_grad for p in layer.base_layer.parameters())


def test_fresh_layer_equals_base_layer():
    layer, context = _layer()
    x = torch.randn(3, 5, 24)
    with context.use(torch.randn(3, USER_DIM)):
        assert torch.equal(layer(x), layer.base_layer(x))


def test_call_without_user_representation_raises():
    layer, context = _layer()
    with pytest.raises(MissingUserRepresentationError, match="user_representations"):
        layer(torch.randn(3, 5, 24))
    with context.use(torch.randn(3, USER_DIM)):
        layer(torch.randn(3, 5, 24))
    with pytest.raises(MissingUserRepresentationError):
        layer(torch.randn(3, 5, 24))


def test_batch_mismatch_raises():
    layer, context = _layer()
    with context.use(torch.randn(2, USER_DIM)), pytest.raises(ValueError, match="batch"):
        layer(torch.randn(3, 5, 24))


@pytest.mark.parametrize("shape", [(3, 24), (3, 2, 4, 24)])
def test_other_input_ranks_keep_rows_per_user(shape):
    layer, context = _layer()
    with torch.no_grad():
        layer.lora_B.normal_()
    x, h = torch.randn(shape), torch.randn(3, USER_DIM)
    with context.use(h):
        full = layer(x)
        flat = layer(x.reshape(3, -1, 24)).reshape(full.shape)
    assert full.shape == (*shape[:-1], 20)
    torch.testing.assert_close(full, flat)


@pytest.mark.parametrize("mixing", ["parameter", "output"])
def test_topk_routing_gives_unselected_experts_no_gradient(mixing):
    layer, context = _layer(routing="topk", top_k=2, mixing=mixing)
    with torch.no_grad():
        layer.lora_B.normal_()
    h = torch.randn(1, USER_DIM)
    with context.use(h):
        layer(torch.randn(1, 5, 24)).square().sum().backward()
    weights = layer.mixing_weights(h)[0]
    selected = weights > 0
    assert int(selected.sum()) == 2
    for grad in (layer.lora_A.grad, layer.lora_B.grad):
        per_expert = grad.flatten(1).abs().sum(-1)  # [N]
        assert (per_expert[selected] > 0).all()
        assert (per_expert[~selected] == 0).all()
