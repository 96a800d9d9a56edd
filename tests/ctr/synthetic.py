"""Small synthetic items/users/samples tables in the pipeline's Arrow schema."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

GENRES = ("Action", "Comedy", "Drama", "Horror")


def items_table(n_items: int = 40, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    genres = [
        list(rng.choice(GENRES, size=rng.integers(1, 3), replace=False)) for _ in range(n_items)
    ]
    return pa.table(
        {
            "item_id": pa.array(np.arange(1, n_items + 1), pa.int32()),
            "genres": pa.array(genres, pa.list_(pa.string())),
        }
    )


def users_table(n_users: int = 30, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "user_id": pa.array(np.arange(1, n_users + 1), pa.int32()),
            "gender": pa.array(rng.choice(["M", "F"], n_users).tolist(), pa.string()),
            "age": pa.array(rng.integers(15, 70, n_users), pa.int32()),
            "occupation": pa.array(rng.choice(["a", "b", "c"], n_users).tolist(), pa.string()),
        }
    )


def rule_samples(
    n: int, n_items: int = 40, n_users: int = 30, hist_len: int = 15, seed: int = 0
) -> pa.Table:
    """Label = 1 iff the target's group (item_id % 2) is the group most of the history is in.

    The target alone is uninformative (uniform over items) and user features are random, so
    only a model that reads the history can beat AUC 0.5.
    """
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, 2, n)  # [n] the user's preferred group for this sample
    # 85% of history items from the preferred group.
    from_taste = rng.random((n, hist_len)) < 0.85
    group = np.where(from_taste, taste[:, None], 1 - taste[:, None])  # [n, L]
    half = n_items // 2
    hist = 2 * rng.integers(0, half, (n, hist_len)) + 1 + group  # odd ids group 0, even group 1
    hist = np.minimum(hist, n_items)
    target = rng.integers(1, n_items + 1, n)
    label = ((target - 1) % 2 == taste).astype(np.int8)
    return pa.table(
        {
            "sample_id": pa.array(np.arange(n), pa.int64()),
            "user_id": pa.array(rng.integers(1, n_users + 1, n), pa.int32()),
            "item_id": pa.array(target, pa.int32()),
            "label": pa.array(label, pa.int8()),
            "history_item_ids": pa.array(hist.tolist(), pa.list_(pa.int32())),
            "history_ratings": pa.array(
                rng.integers(1, 6, (n, hist_len)).astype(np.float32).tolist(),
                pa.list_(pa.float32()),
            ),
        }
    )


def rule_interactions(
    n_users: int = 30, per_user: int = 12, n_items: int = 40, seed: int = 0
) -> pa.Table:
    """An interaction log in ingest's schema (interaction_id in (timestamp, user, item)
    order, label, split by ``interaction_id % 3``) where each user has a taste for one
    item group (item_id % 2) and clicks the items of that group: only a model that reads
    the user's earlier items beats AUC 0.5."""
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, 2, n_users)
    user = np.repeat(np.arange(1, n_users + 1), per_user)
    timestamp = np.tile(np.arange(per_user), n_users) * 10 + rng.integers(0, 5, len(user))
    # Mostly items of the user's group, so the history tells the taste.
    group = np.where(rng.random(len(user)) < 0.75, taste[user - 1], 1 - taste[user - 1])
    item = np.minimum(2 * rng.integers(0, n_items // 2, len(user)) + 1 + group, n_items)
    label = ((item - 1) % 2 == taste[user - 1]).astype(np.int8)
    order = np.lexsort((item, user, timestamp))
    n = len(user)
    return pa.table(
        {
            "interaction_id": pa.array(np.arange(n), pa.int64()),
            "user_id": pa.array(user[order], pa.int32()),
            "item_id": pa.array(item[order], pa.int32()),
            "rating": pa.array(rng.integers(1, 6, n).astype(np.float64)),
            "timestamp": pa.array(timestamp[order], pa.int64()),
            "label": pa.array(label[order], pa.int8()),
            "split": pa.array(np.array(["train", "valid", "test"])[np.arange(n) % 3]),
        }
    )
