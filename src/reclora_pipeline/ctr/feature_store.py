"""CTR features as a flat ``{name: tensor}`` mapping: the form the lens stage persists.

The features of every sample are built once per run and saved (a safetensors file); the
nodes that train or score a CRM load them instead of each re-reading DuckDB. The file
holds the per-sample ids and pointers, the sequence store they point into and the item
tables SIM's searches read; how much history a batch reads is the settings' business
(``CtrLensSettings.history_view``), so changing it needs no rebuild.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from reclora_pipeline.ctr.features import ROW_FIELDS, CTRFeatures
from reclora_pipeline.ctr.sequences import Sequences
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.errors import UserInputError

# Keys of ``CTRFeatures.extra`` (e.g. the split code) get this prefix in the flat mapping.
EXTRA_PREFIX = "extra."
SEQUENCE_KEYS = {"items": "sequence.items", "ratings": "sequence.ratings"}
# The item tables of SIM's semantic and genre searches (``LongHistorySearch``).
SEARCH_KEYS = {"item_vectors": "search.item_vectors", "item_genres": "search.item_genres"}
# Narrow integer types ids are stored in when they fit, smallest first.
_NARROW = (torch.int8, torch.int16, torch.int32)


def _compact(tensor: torch.Tensor) -> torch.Tensor:
    """int64 or int32 ids in the narrowest integer type that holds them: a smaller file
    that saves and loads faster (rating ids fit in int8, item ids in int16 on ML-100K)."""
    if tensor.dtype not in (torch.int64, torch.int32) or tensor.numel() == 0:
        return tensor
    low, high = int(tensor.min()), int(tensor.max())
    for dtype in _NARROW:
        info = torch.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return tensor.to(dtype)
    return tensor


def features_to_tensors(
    features: CTRFeatures,
    item_vectors: torch.Tensor | None = None,
    item_genres: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """``features`` as ``{name: tensor}`` (extras prefixed), with the search tables that
    are given, ready for a safetensors file."""
    tensors = {name: getattr(features, name) for name in ROW_FIELDS}
    tensors |= {EXTRA_PREFIX + name: value for name, value in features.extra.items()}
    tensors |= {key: getattr(features.sequences, name) for name, key in SEQUENCE_KEYS.items()}
    tables = {"item_vectors": item_vectors, "item_genres": item_genres}
    tensors |= {SEARCH_KEYS[name]: table for name, table in tables.items() if table is not None}
    return {name: _compact(value) for name, value in tensors.items()}


def features_from_tensors(
    tensors: Mapping[str, torch.Tensor], settings: CtrLensSettings
) -> CTRFeatures:
    """The inverse of :func:`features_to_tensors`, read through ``settings``' history view.

    Ids stay narrow in memory (a batch widens them); sample ids and the history pointers
    are widened back to int64.
    """
    known = {*ROW_FIELDS, *SEQUENCE_KEYS.values(), *SEARCH_KEYS.values()}
    unknown = sorted(k for k in tensors if k not in known and not k.startswith(EXTRA_PREFIX))
    missing = sorted(k for k in (*ROW_FIELDS, *SEQUENCE_KEYS.values()) if k not in tensors)
    if unknown or missing:
        raise UserInputError(
            f"ctr_features holds unknown tensors {unknown} and lacks {missing} (written by "
            "another version): rerun ctr_lens.build_ctr_features"
        )
    rows = {name: tensors[name] for name in ROW_FIELDS}
    for name in ("sample_id", "history_start", "history_end"):
        rows[name] = rows[name].to(torch.int64)
    extra = {
        k.removeprefix(EXTRA_PREFIX): v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)
    }
    sequences = Sequences(**{name: tensors[key] for name, key in SEQUENCE_KEYS.items()})
    view = settings.history_view(**{name: tensors.get(key) for name, key in SEARCH_KEYS.items()})
    return CTRFeatures(**rows, sequences=sequences, view=view, extra=extra)
