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
from reclora_pipeline.ctr.sample_features import split_codes
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.errors import UserInputError
from tests.ctr.synthetic import items_table, rule_samples, users_table

SETTINGS = CtrLensSettings(max_history=6, max_long_history=4)


@pytest.fixture
def features() -> CTRFeatures:
    samples = rule_samples(30, hist_len=8)
    long = samples.select(["sample_id", "history_item_ids", "history_ratings"]).slice(0, 20)
    long = long.rename_columns(["sample_id", "crm_history_item_ids", "crm_history_ratings"])
    vocab = CTRVocab.fit(items_table(), users_table())
    built = build_features(samples, vocab, max_history=6, long_history=long, max_long_history=4)
    built.label[3] = float("nan")  # an unlabelled row survives the trip
    built.extra["split"] = torch.arange(30) % 3
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
    assert again.long_hist is not None and set(again.extra) == {"split"}


def test_ids_are_stored_narrow_and_widened_on_load(features):
    tensors = features_to_tensors(features)

    assert tensors["hist"].dtype == torch.int8 and tensors["hist_mask"].dtype == torch.bool
    assert tensors[EXTRA_PREFIX + "split"].dtype == torch.int8
    features.hist[0, 0] = 300
    assert features_to_tensors(features)["hist"].dtype == torch.int16
    assert tensors["label"].dtype == torch.float32
    features.sample_id[0] = 2**20
    assert features_to_tensors(features)["sample_id"].dtype == torch.int32
    # An id beyond int32 keeps its width.
    features.sample_id[0] = 2**40
    assert features_to_tensors(features)["sample_id"].dtype == torch.int64
    assert features_from_tensors(features_to_tensors(features), SETTINGS).sample_id[0] == 2**40


def test_features_built_for_other_history_lengths_are_refused(features):
    tensors = features_to_tensors(features)

    with pytest.raises(UserInputError, match="max_history=6, but ctr_lens.max_history=60"):
        features_from_tensors(tensors, CtrLensSettings())
    with pytest.raises(UserInputError, match="max_long_history=4, but .*=5.*build_ctr_features"):
        features_from_tensors(tensors, CtrLensSettings(max_history=6, max_long_history=5))


def test_unknown_tensors_are_refused(features):
    tensors = features_to_tensors(features) | {"mystery": torch.zeros(30)}
    with pytest.raises(UserInputError, match="unknown tensors \\['mystery'\\]"):
        features_from_tensors(tensors, SETTINGS)


def test_split_codes_compare_in_arrow():
    split = pa.chunked_array([["train", "valid", None], ["test", "other", "train"]])
    assert split_codes(split).tolist() == [0, 1, 2, 2, 2, 0]
