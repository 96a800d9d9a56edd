"""The persisted form of the CTR features: a flat tensor mapping that round-trips exactly."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch
from safetensors.torch import load_file, save_file

from reclora_pipeline.ctr.feature_store import (
    EXTRA_PREFIX,
    features_from_tensors,
    features_to_tensors,
)
from reclora_pipeline.ctr.features import CTRFeatures, CTRVocab, build_features
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.ctr.splits import split_codes
from reclora_pipeline.errors import ParameterError, UserInputError
from tests.ctr.synthetic import items_table, rule_samples, users_table

SETTINGS = CtrLensSettings(max_history=6, k_crm=4, lifelong_max_history=8)
VOCAB = CTRVocab.fit(items_table(), users_table())


@pytest.fixture
def features() -> CTRFeatures:
    samples = rule_samples(30, hist_len=8)
    built = build_features(samples, VOCAB, SETTINGS.history_view())
    built.label[3] = float("nan")  # an unlabelled row survives the trip
    built.extra["split"] = (torch.arange(30) % 3).to(torch.int8)
    return built


def _assert_same(left: CTRFeatures, right: CTRFeatures) -> None:
    one, other = left.batch(slice(None)), right.batch(slice(None))
    assert one.keys() == other.keys()
    for name, tensor in one.items():
        assert other[name].dtype == tensor.dtype, name
        assert torch.equal(other[name], tensor) or torch.allclose(
            other[name], tensor, rtol=0, atol=0, equal_nan=True
        ), name


def test_features_round_trip_through_a_safetensors_file(features, tmp_path):
    path = tmp_path / "ctr_features.safetensors"
    save_file(features_to_tensors(features), str(path))

    again = features_from_tensors(load_file(str(path)), SETTINGS)

    _assert_same(features, again)
    assert "long_hist" in again.batch(slice(None)) and set(again.extra) == {"split"}


def test_the_history_view_comes_from_the_settings_not_the_file(features):
    """What a batch reads is a setting: other lengths need no rebuild."""
    tensors = features_to_tensors(features)
    wider = CtrLensSettings(max_history=8, k_crm=2, lifelong_max_history=8)
    batch = features_from_tensors(tensors, wider).batch(slice(None))
    assert batch["hist"].shape == (30, 8) and batch["long_hist"].shape == (30, 2)


def test_the_search_tables_travel_with_the_features(features):
    vectors = torch.randn(VOCAB.n_items + 2, 3)
    genres = torch.from_numpy(VOCAB.item_genres).to(torch.int8)
    tensors = features_to_tensors(features, item_vectors=vectors, item_genres=genres)
    for retrieval in ("semantic", "genre"):
        settings = CtrLensSettings(k_crm=4, lifelong_max_history=8, crm_retrieval=retrieval)
        batch = features_from_tensors(tensors, settings).batch(slice(0, 5))
        assert batch["long_hist"].shape == (5, 4)
    with pytest.raises(ParameterError, match="needs the item embeddings.*build_ctr_features"):
        features_from_tensors(
            features_to_tensors(features), CtrLensSettings(crm_retrieval="semantic")
        )


def test_ids_are_stored_narrow_and_widened_on_load(features):
    tensors = features_to_tensors(features)

    assert tensors["sequence.items"].dtype == torch.int8
    assert tensors["sequence.ratings"].dtype == torch.int8
    assert tensors[EXTRA_PREFIX + "split"].dtype == torch.int8
    features.sequences.items[0] = 300
    assert features_to_tensors(features)["sequence.items"].dtype == torch.int16
    assert tensors["label"].dtype == torch.float32
    features.sample_id[0] = 2**20
    assert features_to_tensors(features)["sample_id"].dtype == torch.int32
    # An id beyond int32 keeps its width.
    features.sample_id[0] = 2**40
    assert features_to_tensors(features)["sample_id"].dtype == torch.int64
    assert features_from_tensors(features_to_tensors(features), SETTINGS).sample_id[0] == 2**40


def test_unknown_tensors_are_refused(features):
    tensors = features_to_tensors(features) | {"mystery": torch.zeros(30)}
    with pytest.raises(UserInputError, match="unknown tensors \\['mystery'\\]"):
        features_from_tensors(tensors, SETTINGS)


def test_split_codes_compare_in_arrow():
    split = pa.chunked_array([["train", "valid", None], ["test", "other", "train"]])
    assert split_codes(split).tolist() == [0, 1, 2, 2, 2, 0]
