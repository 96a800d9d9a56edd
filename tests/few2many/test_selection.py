"""Few2Many selection strategies."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.few2many.recency import recency_histories
from reclora_pipeline.few2many.selection import check_size, select

IDS = np.arange(100, 200)
USERS = np.repeat(np.arange(10), 10)


def test_random_selection_is_seeded_sorted_and_without_replacement():
    first = select(IDS, 30, "random", seed=1)
    assert len(set(first)) == 30 and set(first) <= set(IDS)
    assert (np.diff(first) > 0).all()
    np.testing.assert_array_equal(first, select(IDS, 30, "random", seed=1))
    assert not np.array_equal(first, select(IDS, 30, "random", seed=2))


def test_selection_does_not_depend_on_row_order():
    order = np.random.default_rng(0).permutation(len(IDS))
    probability = np.linspace(0.0, 1.0, len(IDS))
    for strategy in ("random", "stratified_user", "crm_uncertain"):
        inputs = {"user_ids": USERS, "crm_probability": probability}
        shuffled = {name: values[order] for name, values in inputs.items()}
        np.testing.assert_array_equal(
            select(IDS, 30, strategy, seed=3, **inputs),
            select(IDS[order], 30, strategy, seed=3, **shuffled),
        )


def test_stratified_user_covers_every_user_evenly():
    chosen = select(IDS, 20, "stratified_user", seed=0, user_ids=USERS)
    users = USERS[np.searchsorted(IDS, chosen)]
    assert np.bincount(users, minlength=10).tolist() == [2] * 10
    # Random selection of the same size usually leaves some user with 0 or 4+.
    ten = select(IDS, 10, "stratified_user", seed=5, user_ids=USERS)
    assert sorted(USERS[np.searchsorted(IDS, ten)]) == list(range(10))


def test_crm_uncertain_takes_probabilities_closest_to_one_half():
    probability = np.linspace(0.0, 1.0, len(IDS))
    chosen = select(IDS, 10, "crm_uncertain", seed=0, crm_probability=probability)
    distance = np.abs(probability - 0.5)
    assert np.abs(probability[np.searchsorted(IDS, chosen)] - 0.5).max() <= np.sort(distance)[9]


def test_asking_for_exactly_the_pool_takes_all():
    np.testing.assert_array_equal(select(IDS[:5][::-1], 5, "random", seed=0), IDS[:5])


def test_asking_for_more_than_the_pool_is_a_parameter_error():
    # Taking the whole pool instead once meant hours of fine-tuning on a typo.
    with pytest.raises(
        ParameterError,
        match=r"^few2many.n_train = 10000000 but the train split has 100 samples: "
        r"set it to at most 100$",
    ):
        select(IDS, 10_000_000, "random", seed=0, pool="the train split")


def test_size_check_names_the_setting_and_formats_large_counts():
    message = (
        "few2many.n_test = 80000 but the test split has 75,312 samples: set it to at most 75,312"
    )
    with pytest.raises(ParameterError, match=f"^{message}$"):
        check_size(80_000, 75_312, "few2many.n_test", "the test split")
    with pytest.raises(ParameterError, match=r"few2many.n_valid = 1 but the valid split has no"):
        check_size(1, 0, "few2many.n_valid", "the valid split")
    check_size(75_312, 75_312, "few2many.n_train", "the train split")  # the whole pool is fine


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "active"}, r"few2many.strategy='active'.*stratified_user"),
        ({"n": 0}, r"few2many.n_train must be a positive integer, got 0"),
        ({"strategy": "stratified_user"}, r"needs user ids"),
        ({"strategy": "crm_uncertain"}, r"needs CRM probabilities"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    arguments = {"n": 5, "strategy": "random", "seed": 0, **kwargs}
    with pytest.raises(ParameterError, match=message):
        select(IDS, arguments.pop("n"), arguments.pop("strategy"), **arguments)


def test_recency_history_keeps_the_last_k_without_the_target():
    ids, ratings = recency_histories(
        pa.array([[5, 6, 7, 8], [9], []]),
        pa.array([[1.0, 2.0, 3.0, 4.0], [5.0], []]),
        np.array([8, 1, 2]),
        k=2,
    )
    assert ids.to_pylist() == [[6, 7], [9], []]
    assert ratings.to_pylist() == [[2.0, 3.0], [5.0], []]
