"""CTR features: vocabularies fitted on items/users and padded int64 tensors from Arrow columns.

Id conventions shared by every model:
- item ids: 0 = padding, 1..n_items = known items, ``n_items + 1`` = out-of-vocabulary (OOV).
  Unknown, non-positive and null item ids all map to the OOV id.
- user categoricals (gender, age bucket, occupation): 0 = unknown (null, NaN, user not in table).
- rating ids: 0 = padding or missing rating, ``round(clip(r, 0, max_rating)) + 1`` otherwise.
Histories live once in a sequence store (``ctr.sequences``); a batch gathers the newest
entries its ``HistoryView`` asks for, left-aligned and chronological (newest last):
position j < length is valid, the rest is padding with mask False.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from reclora_pipeline.ctr.long_history import HistoryView
from reclora_pipeline.ctr.sequences import Sequences, aligned_values, list_lengths, narrow_ids
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


# Per-sample tensors of CTRFeatures, in the order they are stored and selected.
ROW_FIELDS = (
    "item",
    "gender",
    "age",
    "occupation",
    "label",
    "sample_id",
    "history_start",
    "history_end",
)


@dataclass
class CTRFeatures:
    """n samples: per-sample ids and pointers into a shared lifelong sequence store.

    Sample i's history is ``sequences[history_start[i]:history_end[i]]`` (every earlier
    interaction, oldest first); ``view`` says which part of it a batch gathers. Ids may be
    stored narrow (int8/int16/int32): :meth:`batch` widens them to int64.
    """

    item: torch.Tensor  # [n] model item ids
    gender: torch.Tensor  # [n]
    age: torch.Tensor  # [n]
    occupation: torch.Tensor  # [n]
    label: torch.Tensor  # [n] float32, NaN when the table has no label
    sample_id: torch.Tensor  # [n] int64
    history_start: torch.Tensor  # [n] index of the sample's first history entry
    history_end: torch.Tensor  # [n] one past its newest earlier interaction
    sequences: Sequences
    view: HistoryView = field(default_factory=HistoryView)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.item.shape[0])

    def rows(self) -> dict[str, torch.Tensor]:
        """The per-sample tensors (row fields and extras), as stored."""
        return {name: getattr(self, name) for name in ROW_FIELDS} | self.extra

    def batch(self, index: torch.Tensor | slice) -> dict[str, torch.Tensor]:
        """A mini-batch as a dict of int64 ids (float labels), with its histories
        (``hist*``, and ``long_hist*`` when the view has a long search) gathered."""
        picked = {
            name: value[index] if name == "label" else value[index].to(torch.int64)
            for name, value in self.rows().items()
        }
        start, end = picked.pop("history_start"), picked.pop("history_end")
        out = picked
        out["hist"], out["hist_rating"], out["hist_mask"] = self.sequences.window(
            start, end, self.view.max_history
        )
        if self.view.long is not None:
            out["long_hist"], out["long_hist_rating"], out["long_hist_mask"] = self.view.long.pick(
                self.sequences, start, end, out["item"]
            )
        return out

    def select(self, index: torch.Tensor | slice) -> CTRFeatures:
        """The rows in ``index`` as a new CTRFeatures sharing the sequence store."""
        picked = {name: value[index] for name, value in self.rows().items()}
        extra = {name: picked.pop(name) for name in self.extra}
        return CTRFeatures(**picked, sequences=self.sequences, view=self.view, extra=extra)

    def with_view(self, view: HistoryView) -> CTRFeatures:
        """The same rows read through another ``view``."""
        return dataclasses.replace(self, view=view)

    def has_labels(self) -> bool:
        return bool(torch.isfinite(self.label).all())


def _to_tensor(values: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    # A copy: Arrow-backed arrays are read-only and torch wants writable memory.
    return torch.tensor(np.asarray(values), dtype=dtype)


def profile_features(samples: pa.Table, vocab: CTRVocab) -> dict[str, torch.Tensor]:
    """The per-sample ids of ``samples`` (user_id, item_id, [label], [sample_id]): item,
    user profile, label (NaN without a column) and sample_id (row number without one)."""
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
    return {
        "item": narrow_ids(vocab.map_items(item_raw)),
        "gender": narrow_ids(gender),
        "age": narrow_ids(age),
        "occupation": narrow_ids(occ),
        "label": _to_tensor(label, torch.float32),
        "sample_id": _to_tensor(sample_id, torch.int64),
    }


def build_features(
    samples: pa.Table,
    vocab: CTRVocab,
    view: HistoryView | None = None,
    *,
    history_column: str = "history_item_ids",
    rating_column: str | None = "history_ratings",
) -> CTRFeatures:
    """Samples table (user_id, item_id, [label], [sample_id], history lists) -> CTRFeatures.

    Each row's lists are its whole history (oldest first); they become the row's own
    segment of a sequence store. Pass ``rating_column=None`` to ignore history ratings (a
    ratings list shorter than its ids list leaves rating id 0 on the missing entries).
    """
    ids = _column(samples, history_column)
    lengths = list_lengths(ids)
    raw_ids = aligned_values(ids, lengths)
    ratings = None
    if rating_column is not None and rating_column in samples.column_names:
        ratings = _column(samples, rating_column)
    sequences = Sequences(
        items=narrow_ids(vocab.map_items(raw_ids)),
        ratings=_to_tensor(vocab.map_ratings(aligned_values(ratings, lengths)), torch.int8),
    )
    end = np.cumsum(lengths)
    return CTRFeatures(
        **profile_features(samples, vocab),
        history_start=torch.from_numpy(end - lengths),
        history_end=torch.from_numpy(end),
        sequences=sequences,
        view=view or HistoryView(),
    )
