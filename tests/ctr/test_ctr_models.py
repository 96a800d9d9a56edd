"""DIN, SIM, DeepFM: shapes, masking, OOV/empty inputs, user representations, registry."""

import io

import pyarrow as pa
import pytest
import torch

from reclora_pipeline.ctr.features import CTRVocab, build_features
from reclora_pipeline.ctr.layers import masked_softmax
from reclora_pipeline.ctr.long_history import HistoryView, LongHistorySearch
from reclora_pipeline.ctr.registry import CTR_MODELS, build_ctr_model
from reclora_pipeline.ctr.training import user_representations
from reclora_pipeline.errors import ParameterError
from tests.ctr.synthetic import items_table, rule_samples, users_table

N_ITEMS = 40


@pytest.fixture(scope="module")
def vocab() -> CTRVocab:
    return CTRVocab.fit(items_table(N_ITEMS), users_table())


@pytest.fixture(scope="module")
def features(vocab):
    samples = rule_samples(12, n_items=N_ITEMS, hist_len=8)
    # Ragged histories: row 0 empty, row 1 has OOV items, the rest vary in length.
    hist = samples.column("history_item_ids").to_pylist()
    hist[0] = []
    hist[1] = [5000, 3, -2]
    hist[2] = hist[2][:3]
    samples = samples.set_column(
        samples.column_names.index("history_item_ids"),
        "history_item_ids",
        pa.array(hist, pa.list_(pa.int32())),
    )
    view = HistoryView(max_history=6, long=LongHistorySearch(k=4, scan=10))
    f = build_features(samples, vocab, view)
    f.item[3] = vocab.oov_item  # an unknown target at scoring time
    return f


@pytest.mark.parametrize("name", sorted(CTR_MODELS))
def test_logits_and_user_repr_shapes_and_finite(name, vocab, features):
    model = build_ctr_model(name, vocab).eval()
    batch = features.batch(slice(None))
    logits = model(batch)
    h = model.user_representation(batch)
    assert logits.shape == (len(features),)
    assert h.shape == (len(features), 256)
    # Empty history (row 0), OOV history (row 1) and OOV target (row 3) stay finite.
    assert torch.isfinite(logits).all() and torch.isfinite(h).all()


@pytest.mark.parametrize("name", sorted(CTR_MODELS))
def test_gradients_are_finite_with_empty_histories(name, vocab, features):
    model = build_ctr_model(name, vocab)
    model(features.batch(slice(None))).sum().backward()
    for param in model.parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all()


def test_padded_positions_get_exactly_zero_attention(vocab, features):
    model = build_ctr_model("din", vocab).eval()
    with torch.no_grad():
        w = model.attention_weights(features.batch(slice(None)))
    mask = features.batch(slice(None))["hist_mask"]
    assert w.shape == mask.shape
    assert (w[~mask] == 0).all()
    assert (w[mask] > 0).all()
    has_history = mask.any(1)
    torch.testing.assert_close(w[has_history].sum(1), torch.ones(int(has_history.sum())))
    assert (w[~has_history] == 0).all()  # empty history: no weight anywhere, no NaN


def test_padding_content_does_not_change_the_output(vocab, features):
    model = build_ctr_model("din", vocab).eval()
    batch = features.batch(slice(None))
    noisy = dict(batch)
    # Garbage ids behind the mask must be ignored.
    noisy["hist"] = torch.where(
        batch["hist_mask"], batch["hist"], torch.full_like(batch["hist"], 7)
    )
    noisy["hist_rating"] = torch.where(batch["hist_mask"], batch["hist_rating"], 3)
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(noisy))


def test_masked_softmax_on_an_all_padding_row():
    scores = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[True, False, True], [False, False, False]])
    w = masked_softmax(scores, mask)
    assert w[0, 1] == 0 and (w[1] == 0).all()
    torch.testing.assert_close(w[0, [0, 2]], torch.softmax(torch.tensor([1.0, 3.0]), 0))


def test_sim_searches_the_long_list_and_uses_it(vocab, features):
    model = build_ctr_model("sim", vocab, top_k=4).eval()
    batch = features.batch(slice(None))
    with torch.no_grad():
        target = model.items(batch["item"])
        keys = model.history(batch["long_hist"], batch["long_hist_rating"])
        picked, picked_mask, _ = model.search(target, keys, batch["long_hist_mask"])
        assert picked.shape == (len(features), 4, keys.shape[-1])
        # Rows with fewer valid items than top_k keep only valid picks.
        expected = batch["long_hist_mask"].sum(1).clamp(max=4)
        assert picked_mask.sum(1).tolist() == expected.tolist()
        altered = dict(batch)
        altered["long_hist"] = torch.where(batch["long_hist_mask"], 13, 0)
        assert not torch.allclose(model(batch), model(altered))


def test_user_repr_identical_after_state_dict_round_trip(vocab, features):
    model = build_ctr_model("din", vocab, seed=3)
    before = user_representations(model, features, batch_size=5)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    reloaded = build_ctr_model("din", vocab, seed=99)
    reloaded.load_state_dict(torch.load(buffer))
    after = user_representations(reloaded, features, batch_size=7)
    assert before.shape == (len(features), 256)
    torch.testing.assert_close(torch.from_numpy(after), torch.from_numpy(before))
    assert not reloaded.training  # user_representations switches to eval (no dropout)


def test_build_is_seeded(vocab):
    a = build_ctr_model("din", vocab, seed=1).state_dict()
    b = build_ctr_model("din", vocab, seed=1).state_dict()
    c = build_ctr_model("din", vocab, seed=2).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_unknown_model_name_is_a_parameter_error(vocab):
    with pytest.raises(ParameterError, match=r"ctr_lens\.crm.*'xgboost'.*deepfm, din, sim"):
        build_ctr_model("xgboost", vocab)
    with pytest.raises(ParameterError, match="bad option"):
        build_ctr_model("din", vocab, nonsense=1)
    assert isinstance(build_ctr_model(" DIN ", vocab), CTR_MODELS["din"])
