"""PersonalizedLoraModel on tiny random LLMs: injection, exactness, user handling."""

import copy

import pytest
import torch

from reclora_pipeline.personalized_lora import (
    MissingUserRepresentationError,
    PersonalizedLoraConfig,
    PersonalizedLoraLinear,
    get_personalized_model,
)
from tests.personalized_lora.plora_helpers import (
    randomize_banks,
    tiny_llama,
    tiny_qwen2,
    token_ids,
    user_vectors,
)


def _wrap(base=None, **overrides):
    base = tiny_llama() if base is None else base
    torch.manual_seed(5)
    return get_personalized_model(base, PersonalizedLoraConfig(**overrides)).eval()


def test_injects_only_the_target_projections_and_freezes_the_base():
    model = _wrap()
    names = [name for name, _ in model.personalized_layers()]
    assert names == [
        f"model.layers.{i}.self_attn.{proj}" for i in range(2) for proj in ("q_proj", "v_proj")
    ]
    assert not isinstance(model.base_model.model.layers[0].self_attn.k_proj, PersonalizedLoraLinear)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all((".lora_" in n) or (".gate." in n) for n in trainable)
    assert all(".base_layer." not in n for n in trainable)


def test_configurable_target_names():
    model = _wrap(target_modules=("k_proj", "down_proj"))
    assert {name.rsplit(".", 1)[-1] for name, _ in model.personalized_layers()} == {
        "k_proj",
        "down_proj",
    }
    with pytest.raises(ValueError, match="no module"):
        _wrap(target_modules=("query",))


@pytest.mark.parametrize("mixing", ["parameter", "output"])
@pytest.mark.parametrize("make_base", [tiny_llama, tiny_qwen2])
def test_fresh_adapter_reproduces_base_logits(make_base, mixing):
    reference = make_base()
    model = _wrap(copy.deepcopy(reference), mixing=mixing)
    ids = token_ids()
    with torch.no_grad():
        assert torch.equal(model(ids, user_repr=user_vectors()).logits, reference(ids).logits)


def test_trainable_parameter_count_and_print(capsys):
    model = _wrap()
    n, r, user_dim, hidden = 8, 8, 256, 60
    gate = 2 * user_dim + user_dim * hidden + hidden + hidden * n + n
    q_proj, v_proj = n * r * (64 + 64) + gate, n * r * (64 + 32) + gate
    expected = 2 * (q_proj + v_proj)
    total = sum(p.numel() for p in model.parameters())
    assert model.get_nb_trainable_parameters() == (expected, total)
    model.print_trainable_parameters()
    assert capsys.readouterr().out.strip() == (
        f"trainable params: {expected:,d} || all params: {total:,d} || "
        f"trainable%: {100 * expected / total:.4f}"
    )


def test_user_representations_never_leak_past_one_call():
    model = _wrap()
    ids, h = token_ids(), user_vectors()
    with pytest.raises(MissingUserRepresentationError):
        model(ids)
    model(ids, user_repr=h)
    with pytest.raises(MissingUserRepresentationError):
        model(ids)
    with model.user_representations(h):
        model(ids)
    assert not model.user_context.is_set
    with pytest.raises(KeyError), model.user_representations(h):
        raise KeyError("boom")
    assert not model.user_context.is_set
    with pytest.raises(ValueError, match="user_dim"):
        model(ids, user_repr=torch.randn(3, 7))


def test_nested_blocks_restore_the_outer_users():
    model = _wrap()
    randomize_banks(model)
    ids, outer, inner = token_ids(), user_vectors(seed=1), user_vectors(seed=2)
    with torch.no_grad(), model.user_representations(outer):
        before = model(ids).logits
        with model.user_representations(inner):
            model(ids)
        assert torch.equal(model(ids).logits, before)


@pytest.mark.parametrize("mixing", ["parameter", "output"])
def test_rows_are_personalized_and_independent_of_the_batch(mixing):
    model = _wrap(mixing=mixing)
    randomize_banks(model)
    ids = token_ids(batch=1).repeat(3, 1)  # same tokens in every row
    h = user_vectors(batch=3)
    with torch.no_grad():
        batch_logits = model(ids, user_repr=h).logits
        alone = [model(ids[i : i + 1], user_repr=h[i : i + 1]).logits for i in range(3)]
    assert (batch_logits[0] - batch_logits[1]).abs().max() > 1e-4
    assert (batch_logits[1] - batch_logits[2]).abs().max() > 1e-4
    for i in range(3):
        torch.testing.assert_close(batch_logits[i : i + 1], alone[i], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mixing", ["parameter", "output"])
def test_gradients_reach_banks_and_gates_only(mixing):
    model = _wrap(mixing=mixing).train()
    randomize_banks(model)
    ids = token_ids()
    model(ids, labels=ids, user_repr=user_vectors()).loss.backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        else:
            assert param.grad is None, name


def test_generate_passes_users_through():
    reference = tiny_llama()
    model = _wrap(copy.deepcopy(reference))
    ids = token_ids(batch=2, length=4)
    kwargs = {"max_new_tokens": 3, "do_sample": False, "pad_token_id": 0}
    out = model.generate(ids, user_repr=user_vectors(batch=2), **kwargs)
    assert torch.equal(out, reference.generate(ids, **kwargs))
    assert not model.user_context.is_set


@pytest.mark.parametrize("routing", ["soft", "topk"])
def test_model_level_gate_batching_matches_per_layer_gates(routing):
    model = _wrap(routing=routing)
    randomize_banks(model)
    ids, h = token_ids(), user_vectors()
    with torch.no_grad():
        batched = model(ids, user_repr=h).logits  # all gates in one pass
        with model.user_representations(h):
            per_layer = model.base_model(ids).logits  # each layer runs its own gate
    torch.testing.assert_close(batched, per_layer)


def test_half_precision_base_keeps_its_dtype():
    reference = tiny_llama().to(torch.bfloat16)
    model = _wrap(copy.deepcopy(reference))
    assert all(layer.lora_A.dtype == torch.bfloat16 for _, layer in model.personalized_layers())
    ids = token_ids()
    with torch.no_grad():
        logits = model(ids, user_repr=user_vectors()).logits  # float32 users, bf16 model
        assert torch.equal(logits, reference(ids).logits)


def test_unknown_attributes_come_from_the_base_model():
    model = _wrap()
    assert model.config.hidden_size == 64
    assert model.get_input_embeddings() is model.base_model.model.embed_tokens
    with pytest.raises(AttributeError):
        _ = model.no_such_attribute


def test_unload_restores_the_original_linears():
    reference = tiny_llama()
    base = copy.deepcopy(reference)
    originals = {name: base.get_submodule(name) for name in ("model.layers.0.self_attn.q_proj",)}
    model = _wrap(base)
    randomize_banks(model)
    restored = model.unload()
    assert restored is base
    assert not any(isinstance(m, PersonalizedLoraLinear) for m in restored.modules())
    assert (
        restored.get_submodule("model.layers.0.self_attn.q_proj")
        is originals["model.layers.0.self_attn.q_proj"]
    )
    ids = token_ids()
    with torch.no_grad():
        assert torch.equal(restored(ids).logits, reference(ids).logits)
