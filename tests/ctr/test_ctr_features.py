"""CTRVocab and build_features: padding, truncation, OOV, NaN and unknown users."""

import numpy as np
import pyarrow as pa
import pytest
import torch

from reclora_pipeline.ctr.features import CTRVocab, age_bucket, build_features
from reclora_pipeline.ctr.long_history import HistoryView, LongHistorySearch
from reclora_pipeline.errors import UserInputError
from tests.ctr.synthetic import items_table, users_table


@pytest.fixture
def vocab() -> CTRVocab:
    return CTRVocab.fit(items_table(10), users_table(5))


def _samples(histories, ratings=None, items=None, users=None) -> pa.Table:
    n = len(histories)
    cols = {
        "sample_id": pa.array(range(n), pa.int64()),
        "user_id": pa.array(users or [1] * n, pa.int32()),
        "item_id": pa.array(items or [1] * n, pa.int32()),
        "label": pa.array([i % 2 for i in range(n)], pa.int8()),
        "history_item_ids": pa.array(histories, pa.list_(pa.int32())),
    }
    if ratings is not None:
        cols["history_ratings"] = pa.array(ratings, pa.list_(pa.float32()))
    return pa.table(cols)


def _all(features):
    """Every row of ``features`` as one batch."""
    return features.batch(slice(None))


def test_null_lists_are_empty_and_a_sliced_column_is_honoured(vocab):
    histories = pa.array([[9, 9], [1, 2, 3, 4, 5], [], None, [7, None]], pa.list_(pa.int32()))
    samples = pa.table(
        {
            "user_id": pa.array([1] * 4, pa.int32()),
            "item_id": pa.array([1] * 4, pa.int32()),
            "history_item_ids": histories.slice(1),
        }
    )
    batch = _all(build_features(samples, vocab, HistoryView(max_history=3)))
    assert batch["hist_mask"].sum(1).tolist() == [3, 0, 0, 2]
    assert batch["hist"][0].tolist() == [3, 4, 5]
    # A null inside a list is not an item: the OOV id, like 0 or an unknown id.
    assert batch["hist"][3].tolist() == [7, 11, 0]


def test_vocab_sizes_and_genre_table(vocab):
    items = items_table(10)
    assert vocab.n_items == 10 and vocab.oov_item == 11
    assert vocab.item_genres.shape == (12, len(vocab.genres))
    # Padding and OOV rows have no genres; item rows match the table.
    assert vocab.item_genres[0].sum() == 0 and vocab.item_genres[11].sum() == 0
    first = items.column("genres")[0].as_py()
    assert sorted(np.array(vocab.genres)[vocab.item_genres[1] > 0]) == sorted(first)


def test_vocab_round_trips_through_a_dict(vocab):
    again = CTRVocab.from_dict(vocab.to_dict())
    assert again.sizes == vocab.sizes
    np.testing.assert_array_equal(again.item_genres, vocab.item_genres)
    np.testing.assert_array_equal(again.user_occupation, vocab.user_occupation)


def test_histories_truncate_pad_and_map_oov(vocab):
    samples = _samples(
        [[1, 2, 3, 4], [], [5, 999, 0]],
        ratings=[[1, 2, 3, 4], [], [float("nan"), 5, 9]],
        items=[3, 1234, 2],
    )
    f = _all(build_features(samples, vocab, HistoryView(max_history=3)))
    assert f["hist"].dtype == torch.int64 and f["hist"].shape == (3, 3)
    assert f["hist"][0].tolist() == [2, 3, 4]  # newest three
    assert f["hist_mask"][0].all()
    assert f["hist"][1].tolist() == [0, 0, 0] and not f["hist_mask"][1].any()
    # 999 is past the vocabulary and 0 is not an item: both are OOV, not padding.
    assert f["hist"][2].tolist() == [5, 11, 11] and f["hist_mask"][2].all()
    assert f["item"].tolist() == [3, 11, 2]
    # Ratings: r -> r + 1, NaN -> 0 (missing), 9 clipped to 5 -> 6; padding -> 0.
    assert f["hist_rating"][0].tolist() == [3, 4, 5]
    assert f["hist_rating"][1].tolist() == [0, 0, 0]
    assert f["hist_rating"][2].tolist() == [0, 6, 6]


def test_unknown_and_null_users_get_the_unknown_id(vocab):
    samples = _samples([[1], [1], [1]], users=[1, 77, 2])
    f = build_features(samples, vocab)
    assert f.gender[1] == 0 and f.age[1] == 0 and f.occupation[1] == 0
    assert (f.gender[[0, 2]] > 0).all() and (f.occupation[[0, 2]] > 0).all()


def test_null_user_attributes_map_to_unknown():
    users = pa.table(
        {
            "user_id": pa.array([1, 2], pa.int32()),
            "gender": pa.array(["F", None]),
            "age": pa.array([30.0, float("nan")]),
            "occupation": pa.array([None, "x"]),
        }
    )
    v = CTRVocab.fit(items_table(5), users)
    g, a, o = v.user_features(np.array([1, 2]))
    assert g.tolist() == [1, 0] and a[1] == 0 and a[0] > 0 and o.tolist() == [0, 1]


def test_age_buckets():
    assert age_bucket(np.array([7, 18, 24, 25, 56, 80, np.nan])).tolist() == [1, 2, 2, 3, 7, 7, 0]


def test_missing_label_column_gives_nan_labels_and_missing_ratings_zero(vocab):
    samples = _samples([[1, 2]]).drop_columns(["label"])
    f = build_features(samples, vocab)
    assert torch.isnan(f.label).all() and not f.has_labels()
    assert (_all(f)["hist_rating"] == 0).all()


def test_a_shorter_ratings_list_leaves_the_missing_ratings_unknown(vocab):
    f = _all(build_features(_samples([[1, 2, 3]], ratings=[[4]]), vocab))
    assert f["hist_rating"][0, :3].tolist() == [5, 0, 0]


def test_missing_column_is_a_user_error(vocab):
    with pytest.raises(UserInputError, match="history_item_ids"):
        build_features(_samples([[1]]).drop_columns(["history_item_ids"]), vocab)


def test_select_keeps_rows_aligned_and_shares_the_sequences(vocab):
    samples = _samples([[1], [2, 3], []], items=[4, 5, 6])
    f = build_features(samples, vocab, HistoryView(long=LongHistorySearch(k=2, scan=2)))
    part = f.select(torch.tensor([2, 0]))
    assert len(part) == 2 and part.sequences is f.sequences
    assert part.item.tolist() == [6, 4] and part.sample_id.tolist() == [2, 0]
    batch = _all(part)
    assert batch["hist_mask"].sum(1).tolist() == [0, 1]
    assert batch["long_hist"][1].tolist() == [1, 0]
    assert batch["item"].dtype == torch.int64
