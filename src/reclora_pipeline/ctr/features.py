"""CTR features: vocabularies fitted on items/users and padded int64 tensors from Arrow columns.

Id conventions shared by every model:
- item ids: 0 = padding, 1..n_items = known items, ``n_items + 1`` = out-of-vocabulary (OOV).
  Unknown, non-positive and null item ids all map to the OOV id.
- user categoricals (gender, age bucket, occupation): 0 = unknown (null, NaN, user not in table).
- rating ids: 0 = padding or missing rating, ``round(clip(r, 0, max_rating)) + 1`` otherwise.
Histories keep the newest ``max_len`` entries (lists are chronological, newest last) and are
left-aligned: position j < length is valid, the rest is padding with mask False.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from reclora_pipeline.errors import UserInputError

# ML-1M style age groups; ages below the first edge fall in bucket 1.
AGE_EDGES: tuple[int, ...] = (18, 25, 35, 45, 50, 56)


def _column(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        raise UserInputError(f"column {name!r} missing; table has {table.column_names}")
    col = table.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _ids_to_vocab(values: pa.Array) -> tuple[tuple[str, ...], np.ndarray]:
    """Sorted vocabulary of non-null strings and per-row ids (0 = null/unknown)."""
    strings = values.cast(pa.string())
    vocab = tuple(sorted(s for s in pc.unique(strings).to_pylist() if s is not None))
    index = pc.index_in(strings, value_set=pa.array(vocab, pa.string()))
    ids = pc.fill_null(pc.add(index, 1), 0).to_numpy(zero_copy_only=False)
    return vocab, ids.astype(np.int64)


def age_bucket(ages: np.ndarray) -> np.ndarray:
    """Age in years -> bucket id in 1..len(AGE_EDGES)+1; NaN -> 0 (unknown)."""
    ages = np.asarray(ages, dtype=np.float64)
    bucket = np.searchsorted(np.asarray(AGE_EDGES), np.nan_to_num(ages), side="right") + 1
    return np.where(np.isnan(ages), 0, bucket).astype(np.int64)


@dataclass
class CTRVocab:
    """Everything needed to turn raw ids into model ids; fitted once on items and users."""

    n_items: int
    genres: tuple[str, ...]
    # [n_items + 2, n_genres] multi-hot; rows 0 (padding) and n_items + 1 (OOV) are zero.
    item_genres: np.ndarray
    genders: tuple[str, ...]
    occupations: tuple[str, ...]
    # Sorted raw user ids and, aligned with them, their categorical ids.
    user_ids: np.ndarray
    user_gender: np.ndarray
    user_age: np.ndarray
    user_occupation: np.ndarray
    max_rating: int = 5

    @property
    def oov_item(self) -> int:
        return self.n_items + 1

    @property
    def sizes(self) -> dict[str, int]:
        """Embedding table sizes (including the padding/unknown id 0)."""
        return {
            "item": self.n_items + 2,
            "genre": len(self.genres),
            "gender": len(self.genders) + 1,
            "age": len(AGE_EDGES) + 2,
            "occupation": len(self.occupations) + 1,
            "rating": self.max_rating + 2,
        }

    @classmethod
    def fit(cls, items: pa.Table, users: pa.Table, max_rating: int = 5) -> CTRVocab:
        """Fit on ``items`` (item_id, genres) and ``users`` (user_id, gender, age, occupation)."""
        item_ids = pc.fill_null(_column(items, "item_id"), 0).to_numpy(zero_copy_only=False)
        n_items = int(item_ids.max()) if len(item_ids) else 0
        genres_col = _column(items, "genres")
        lengths = pc.fill_null(pc.list_value_length(genres_col), 0).to_numpy(zero_copy_only=False)
        genre_vocab, genre_ids = _ids_to_vocab(genres_col.flatten())
        item_genres = np.zeros((n_items + 2, len(genre_vocab)), dtype=np.float32)
        rows = np.repeat(item_ids.astype(np.int64), lengths)
        keep = (genre_ids > 0) & (rows > 0)
        item_genres[rows[keep], genre_ids[keep] - 1] = 1.0

        user_ids = pc.fill_null(_column(users, "user_id"), -1).to_numpy(zero_copy_only=False)
        order = np.argsort(user_ids, kind="stable")
        genders, gender_ids = _ids_to_vocab(_column(users, "gender"))
        occupations, occ_ids = _ids_to_vocab(_column(users, "occupation"))
        ages = _column(users, "age").cast(pa.float64()).to_numpy(zero_copy_only=False)
        return cls(
            n_items=n_items,
            genres=genre_vocab,
            item_genres=item_genres,
            genders=genders,
            occupations=occupations,
            user_ids=user_ids[order].astype(np.int64),
            user_gender=gender_ids[order],
            user_age=age_bucket(ages)[order],
            user_occupation=occ_ids[order],
            max_rating=max_rating,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (lists), for saving next to a checkpoint."""
        return {
            "n_items": self.n_items,
            "genres": list(self.genres),
            "item_genres": self.item_genres.astype(np.int8).tolist(),
            "genders": list(self.genders),
            "occupations": list(self.occupations),
            "user_ids": self.user_ids.tolist(),
            "user_gender": self.user_gender.tolist(),
            "user_age": self.user_age.tolist(),
            "user_occupation": self.user_occupation.tolist(),
            "max_rating": self.max_rating,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CTRVocab:
        return cls(
            n_items=int(data["n_items"]),
            genres=tuple(data["genres"]),
            item_genres=np.asarray(data["item_genres"], dtype=np.float32).reshape(
                int(data["n_items"]) + 2, len(data["genres"])
            ),
            genders=tuple(data["genders"]),
            occupations=tuple(data["occupations"]),
            user_ids=np.asarray(data["user_ids"], dtype=np.int64),
            user_gender=np.asarray(data["user_gender"], dtype=np.int64),
            user_age=np.asarray(data["user_age"], dtype=np.int64),
            user_occupation=np.asarray(data["user_occupation"], dtype=np.int64),
            max_rating=int(data["max_rating"]),
        )

    def map_items(self, ids: np.ndarray) -> np.ndarray:
        """Raw item ids (float with NaN for nulls allowed) -> model ids; unknown -> OOV."""
        ids = np.asarray(ids, dtype=np.float64)
        known = np.isfinite(ids) & (ids >= 1) & (ids <= self.n_items)
        return np.where(known, np.nan_to_num(ids), self.oov_item).astype(np.int64)

    def map_ratings(self, ratings: np.ndarray) -> np.ndarray:
        """Raw ratings -> rating ids; NaN -> 0 (same id as padding: no rating information)."""
        r = np.asarray(ratings, dtype=np.float64)
        ids = np.rint(np.clip(np.nan_to_num(r, nan=0.0), 0, self.max_rating)) + 1
        return np.where(np.isnan(r), 0, ids).astype(np.int64)

    def user_features(self, user_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(gender, age bucket, occupation) ids per raw user id; users not in the table -> 0."""
        uid = np.asarray(user_ids, dtype=np.float64)
        if len(self.user_ids) == 0:
            zero = np.zeros(len(uid), dtype=np.int64)
            return zero, zero.copy(), zero.copy()
        safe = np.nan_to_num(uid, nan=-(2**62)).astype(np.int64)
        pos = np.clip(np.searchsorted(self.user_ids, safe), 0, len(self.user_ids) - 1)
        found = (self.user_ids[pos] == safe) & np.isfinite(uid)
        gender = np.where(found, self.user_gender[pos], 0)
        age = np.where(found, self.user_age[pos], 0)
        occupation = np.where(found, self.user_occupation[pos], 0)
        return gender, age, occupation


def pad_lists(column: pa.Array, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """List column -> ([n, max_len] float64 values, left-aligned, NaN if null; [n] lengths).

    Lists longer than ``max_len`` keep their last (newest) ``max_len`` elements; null lists
    are empty. Vectorised over the flattened values, no per-row Python loop.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    full = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    full = full.astype(np.int64)
    # flatten() honours slicing and drops values hidden behind null lists.
    flat = column.flatten().cast(pa.float64()).to_numpy(zero_copy_only=False)
    ends = np.cumsum(full)
    kept = np.minimum(full, max_len)
    starts = ends - kept  # first kept element: the newest `kept` entries
    pos = np.arange(max_len)[None, :]  # [1, L]
    valid = pos < kept[:, None]  # [n, L]
    values = np.full((n, max_len), np.nan)
    if flat.size:
        idx = np.where(valid, starts[:, None] + pos, 0)  # [n, L]
        values = np.where(valid, flat[idx], np.nan)
    return values, kept


@dataclass
class CTRFeatures:
    """Model-ready tensors for n samples (all int64 except the float labels and bool masks)."""

    item: torch.Tensor  # [n]
    gender: torch.Tensor  # [n]
    age: torch.Tensor  # [n]
    occupation: torch.Tensor  # [n]
    hist: torch.Tensor  # [n, L] item ids, 0 = padding
    hist_rating: torch.Tensor  # [n, L] rating ids, 0 = padding / missing
    hist_mask: torch.Tensor  # [n, L] bool
    label: torch.Tensor  # [n] float32, NaN when the table has no label
    sample_id: torch.Tensor  # [n]
    # Optional long (lifelong / retrieved) behaviour list used by SIM.
    long_hist: torch.Tensor | None = None  # [n, K]
    long_hist_rating: torch.Tensor | None = None  # [n, K]
    long_hist_mask: torch.Tensor | None = None  # [n, K]
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.item.shape[0])

    def _tensors(self) -> dict[str, torch.Tensor]:
        names = (
            "item",
            "gender",
            "age",
            "occupation",
            "hist",
            "hist_rating",
            "hist_mask",
            "label",
            "sample_id",
            "long_hist",
            "long_hist_rating",
            "long_hist_mask",
        )
        out = {k: getattr(self, k) for k in names if getattr(self, k) is not None}
        return out | self.extra

    def batch(self, index: torch.Tensor | slice) -> dict[str, torch.Tensor]:
        """A mini-batch as a dict of tensors (rows selected by ``index``)."""
        return {k: v[index] for k, v in self._tensors().items()}

    def select(self, index: torch.Tensor | slice) -> CTRFeatures:
        """The rows in ``index`` as a new CTRFeatures (tensors are indexed, not copied by hand)."""
        picked = {k: v[index] for k, v in self._tensors().items()}
        extra = {k: picked.pop(k) for k in self.extra}
        return CTRFeatures(**picked, extra=extra)

    def has_labels(self) -> bool:
        return bool(torch.isfinite(self.label).all())


def _to_tensor(values: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    # A copy: Arrow-backed arrays are read-only and torch wants writable memory.
    return torch.tensor(np.asarray(values), dtype=dtype)


def _history(
    table: pa.Table, vocab: CTRVocab, id_col: str, rating_col: str | None, max_len: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    raw_ids, lengths = pad_lists(_column(table, id_col), max_len)
    valid = np.arange(max_len)[None, :] < lengths[:, None]  # [n, L]
    ids = np.where(valid, vocab.map_items(raw_ids), 0)
    if rating_col is not None and rating_col in table.column_names:
        raw_r, _ = pad_lists(_column(table, rating_col), max_len)
        # A ratings list shorter than the ids list leaves NaN -> rating id 0.
        ratings = np.where(valid, vocab.map_ratings(raw_r), 0)
    else:
        ratings = np.zeros_like(ids)
    return _to_tensor(ids, torch.int64), _to_tensor(ratings, torch.int64), torch.from_numpy(valid)


def build_features(
    samples: pa.Table,
    vocab: CTRVocab,
    *,
    max_history: int = 60,
    history_column: str = "history_item_ids",
    rating_column: str | None = "history_ratings",
    long_history: pa.Table | None = None,
    long_history_column: str = "crm_history_item_ids",
    long_rating_column: str | None = "crm_history_ratings",
    max_long_history: int = 60,
) -> CTRFeatures:
    """Samples table (user_id, item_id, [label], [sample_id], history lists) -> CTRFeatures.

    ``long_history`` (e.g. ``retrieved_histories``) is joined on ``sample_id``; samples it
    lacks get an empty long history. Pass ``rating_column=None`` to ignore history ratings.
    """
    if max_history < 1 or max_long_history < 1:
        raise UserInputError("max_history and max_long_history must be >= 1")
    n = samples.num_rows
    item_raw = _column(samples, "item_id").cast(pa.float64()).to_numpy(zero_copy_only=False)
    user_raw = _column(samples, "user_id").cast(pa.float64()).to_numpy(zero_copy_only=False)
    gender, age, occ = vocab.user_features(user_raw)
    if "label" in samples.column_names:
        label = _column(samples, "label").cast(pa.float32()).to_numpy(zero_copy_only=False)
    else:
        label = np.full(n, np.nan, dtype=np.float32)
    if "sample_id" in samples.column_names:
        sample_id = pc.fill_null(_column(samples, "sample_id"), -1).to_numpy(zero_copy_only=False)
    else:
        sample_id = np.arange(n)
    hist, hist_rating, hist_mask = _history(
        samples, vocab, history_column, rating_column, max_history
    )
    features = CTRFeatures(
        item=_to_tensor(vocab.map_items(item_raw), torch.int64),
        gender=_to_tensor(gender, torch.int64),
        age=_to_tensor(age, torch.int64),
        occupation=_to_tensor(occ, torch.int64),
        hist=hist,
        hist_rating=hist_rating,
        hist_mask=hist_mask,
        label=_to_tensor(label, torch.float32),
        sample_id=_to_tensor(sample_id, torch.int64),
    )
    if long_history is not None:
        features.long_hist, features.long_hist_rating, features.long_hist_mask = _joined_history(
            long_history,
            sample_id,
            vocab,
            long_history_column,
            long_rating_column,
            max_long_history,
        )
    return features


def _joined_history(
    table: pa.Table,
    sample_id: np.ndarray,
    vocab: CTRVocab,
    id_col: str,
    rating_col: str | None,
    max_len: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """History lists from ``table`` aligned to ``sample_id`` (missing samples -> empty)."""
    ids, ratings, mask = _history(table, vocab, id_col, rating_col, max_len)
    other = pc.fill_null(_column(table, "sample_id"), -1).to_numpy(zero_copy_only=False)
    order = np.argsort(other, kind="stable")
    pos = np.clip(np.searchsorted(other[order], sample_id), 0, max(len(other) - 1, 0))
    if len(other) == 0:
        found = np.zeros(len(sample_id), dtype=bool)
        rows = np.zeros(len(sample_id), dtype=np.int64)
    else:
        rows = order[pos]
        found = other[rows] == sample_id
    rows_t, found_t = torch.from_numpy(rows), torch.from_numpy(found)[:, None]
    if len(other) == 0:
        empty = torch.zeros(len(sample_id), max_len, dtype=torch.int64)
        return empty, empty.clone(), empty.bool()
    return (
        ids[rows_t] * found_t,
        ratings[rows_t] * found_t,
        mask[rows_t] & found_t,
    )
