"""UserGate: a distribution over experts, temperature and top-k routing."""

import torch

from reclora_pipeline.personalized_lora.gate import UserGate, stacked_gate_weights


def _gate(**kwargs) -> UserGate:
    torch.manual_seed(0)
    return UserGate(user_dim=16, n_experts=6, hidden=12, dropout=0.0, **kwargs).eval()


def _entropy(weights: torch.Tensor) -> torch.Tensor:
    return -(weights * weights.clamp_min(1e-12).log()).sum(-1)


def test_weights_form_a_distribution_per_row():
    weights = _gate()(torch.randn(5, 16))
    assert weights.shape == (5, 6)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(5))


def test_temperature_divides_the_logits():
    h = torch.randn(5, 16)
    cold, hot = _gate(temperature=0.5), _gate(temperature=4.0)
    torch.testing.assert_close(hot(h), torch.softmax(hot.logits(h) / 4.0, -1))
    assert (_entropy(hot(h)) > _entropy(cold(h))).all()


def test_topk_keeps_the_largest_weights_renormalised():
    h = torch.randn(5, 16)
    soft = _gate()(h)
    routed = _gate(top_k=2)(h)
    assert ((routed > 0).sum(-1) == 2).all()
    torch.testing.assert_close(routed.sum(-1), torch.ones(5))
    kept_values, kept_index = soft.topk(2, dim=-1)
    torch.testing.assert_close(
        routed.gather(-1, kept_index), kept_values / kept_values.sum(-1, keepdim=True)
    )


def test_gate_dropout_is_active_only_in_training():
    torch.manual_seed(0)
    gate = UserGate(user_dim=16, n_experts=6, hidden=64, dropout=0.5)
    h = torch.randn(4, 16)
    gate.train()
    assert not torch.equal(gate(h), gate(h))
    gate.eval()
    assert torch.equal(gate(h), gate(h))


def test_stacked_gates_equal_gates_one_by_one():
    torch.manual_seed(0)
    gates = [UserGate(16, 6, hidden=12, temperature=0.7, top_k=3).eval() for _ in range(4)]
    for gate in gates:  # non-default affine so every stacked parameter matters
        torch.nn.init.normal_(gate.norm.weight)
        torch.nn.init.normal_(gate.norm.bias)
    h = torch.randn(5, 16)
    expected = torch.stack([gate(h) for gate in gates])  # [G, b, N]
    torch.testing.assert_close(stacked_gate_weights(gates, h), expected)
