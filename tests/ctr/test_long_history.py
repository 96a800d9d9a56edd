"""The lifelong sequence store and SIM's long-history searches over it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reclora_pipeline.ctr.features import CTRVocab, build_features
from reclora_pipeline.ctr.long_history import HistoryView, LongHistorySearch, item_vector_table
from reclora_pipeline.ctr.registry import build_ctr_model
from reclora_pipeline.ctr.sequences import Sequences
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.ctr.training import as_read_by
from reclora_pipeline.errors import ParameterError, SettingError
from reclora_pipeline.item_text.settings import ItemTextSettings
from reclora_pipeline.typed_settings import parse
from tests.ctr.synthetic import items_table, rule_samples, users_table

# Two users back to back: items 1..6 (user A), then 7, 8 (user B).
STORE = Sequences(
    items=torch.tensor([1, 2, 3, 4, 5, 6, 7, 8], dtype=torch.int32),
    ratings=torch.tensor([1, 2, 3, 4, 5, 1, 2, 3], dtype=torch.int8),
)
# Row 0: user A before item 6; row 1: user B before item 8; row 2: user B with no history.
START, END = torch.tensor([0, 6, 6]), torch.tensor([5, 7, 6])


def test_a_window_is_the_newest_entries_of_the_users_own_sequence():
    ids, ratings, mask = STORE.window(START, END, 3)
    assert ids.tolist() == [[3, 4, 5], [7, 0, 0], [0, 0, 0]]
    assert ratings.tolist() == [[3, 4, 5], [2, 0, 0], [0, 0, 0]]
    assert mask.sum(1).tolist() == [3, 1, 0] and ids.dtype == torch.int64


def test_an_empty_store_gives_empty_windows():
    empty = Sequences(
        items=torch.zeros(0, dtype=torch.int32), ratings=torch.zeros(0, dtype=torch.int8)
    )
    ids, _, mask = empty.window(torch.tensor([0]), torch.tensor([0]), 4)
    assert ids.tolist() == [[0, 0, 0, 0]] and not mask.any()


def test_recency_keeps_the_newest_k_and_never_the_target():
    search = LongHistorySearch(k=2, scan=4)
    ids, ratings, mask = search.pick(STORE, START, END, torch.tensor([5, 8, 8]))
    # Row 0 scans items 2..5; 5 is the target, so the newest two others are 3, 4.
    assert ids.tolist() == [[3, 4], [7, 0], [0, 0]]
    assert ratings[0].tolist() == [3, 4] and mask.sum(1).tolist() == [2, 1, 0]


def test_semantic_search_keeps_the_most_similar_in_chronological_order():
    vectors = np.zeros((9, 2), dtype=np.float32)
    vectors[[1, 3]] = [1.0, 0.0]  # like the target
    vectors[[2, 4]] = [-1.0, 0.0]  # unlike it
    vectors[6] = [1.0, 0.1]  # the target
    # Item 5 has no embedding (zero row): similarity 0, between the two groups.
    table = item_vector_table(vectors, n_items=8)
    search = LongHistorySearch(k=3, scan=5, strategy="semantic", item_vectors=table)
    ids, _, _ = search.pick(STORE, START[:1], END[:1], torch.tensor([6]))
    assert ids.tolist() == [[1, 3, 5]]


def test_genre_search_keeps_the_newest_sharing_a_genre():
    genres = torch.zeros(10, 2)
    genres[[1, 2, 6], 0] = 1  # genre 0: items 1, 2 and the target 6
    genres[[3, 4, 5], 1] = 1
    search = LongHistorySearch(k=3, scan=5, strategy="genre", item_genres=genres)
    ids, _, mask = search.pick(STORE, START[:1], END[:1], torch.tensor([6]))
    assert ids.tolist() == [[1, 2, 0]] and mask.sum().item() == 2


def test_item_vectors_are_laid_out_by_model_item_id():
    embeddings = np.ones((4, 3), dtype=np.float32)  # dense ids 0..3, more than n_items = 2
    table = item_vector_table(embeddings, n_items=2)
    assert table.shape == (4, 3)
    # Padding (0) and the OOV id (3) have no vector; known items keep theirs.
    assert table[0].abs().sum() == 0 and table[3].abs().sum() == 0 and table[1].sum() == 3


def test_a_lifelong_window_below_k_crm_is_a_clear_error():
    with pytest.raises(SettingError, match="ctr_lens.lifelong_max_history=30.*at least k_crm"):
        parse(CtrLensSettings, {"k_crm": 60, "lifelong_max_history": 30}, "ctr_lens")
    with pytest.raises(ParameterError, match="lifelong_max_history \\(3\\) must be at least"):
        LongHistorySearch(k=4, scan=3)


def test_a_search_without_its_table_is_a_clear_error():
    with pytest.raises(ParameterError, match="semantic.*needs the item embeddings"):
        LongHistorySearch(strategy="semantic")
    with pytest.raises(ParameterError, match="genre.*needs the item genres"):
        LongHistorySearch(strategy="genre")


def test_the_crm_side_settings_moved_from_item_text_to_ctr_lens():
    with pytest.raises(SettingError, match="item_text.k_crm=60 .*moved to ctr_lens.k_crm"):
        parse(ItemTextSettings, {"k_crm": 60}, "item_text")


def test_only_sim_reads_the_long_list():
    vocab = CTRVocab.fit(items_table(), users_table())
    view = HistoryView(max_history=4, long=LongHistorySearch(k=2, scan=4))
    features = build_features(rule_samples(6, hist_len=5), vocab, view)
    din, sim = build_ctr_model("din", vocab), build_ctr_model("sim", vocab)
    assert "long_hist" not in as_read_by(din, features).batch(slice(None))
    assert as_read_by(sim, features).batch(slice(None))["long_hist"].shape == (6, 2)
