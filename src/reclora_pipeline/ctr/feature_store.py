"""CTR features as a flat ``{name: tensor}`` mapping: the form the lens stage persists.

The features of every sample are built once per run and saved (a safetensors file); the
nodes that train or score a CRM load them instead of each re-reading DuckDB.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch

from reclora_pipeline.ctr.features import CTRFeatures
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.errors import UserInputError

# Keys of ``CTRFeatures.extra`` (e.g. the split code) get this prefix in the flat mapping.
EXTRA_PREFIX = "extra."
_FIELDS = tuple(f.name for f in dataclasses.fields(CTRFeatures) if f.name != "extra")
# Narrow integer types ids are stored in when they fit, smallest first.
_NARROW = (torch.int8, torch.int16, torch.int32)


def _compact(tensor: torch.Tensor) -> torch.Tensor:
    """int64 ids in the narrowest integer type that holds them: a quarter of the file size
    (rating ids fit in int8, item ids in int16 on ML-100K), so it saves and loads faster."""
    if tensor.dtype != torch.int64 or tensor.numel() == 0:
        return tensor
    low, high = int(tensor.min()), int(tensor.max())
    for dtype in _NARROW:
        info = torch.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return tensor.to(dtype)
    return tensor


def features_to_tensors(features: CTRFeatures) -> dict[str, torch.Tensor]:
    """``features`` as ``{field: tensor}`` (extras prefixed), ready for a safetensors file."""
    tensors = {name: getattr(features, name) for name in _FIELDS}
    tensors |= {EXTRA_PREFIX + name: value for name, value in features.extra.items()}
    return {name: _compact(value) for name, value in tensors.items() if value is not None}


def features_from_tensors(
    tensors: Mapping[str, torch.Tensor], settings: CtrLensSettings
) -> CTRFeatures:
    """The inverse of :func:`features_to_tensors`, checked against ``settings``.

    Every CTRFeatures id tensor is int64, so narrow stored integers are widened back.
    """
    wide = {k: v.to(torch.int64) if v.dtype in _NARROW else v for k, v in tensors.items()}
    unknown = sorted(k for k in wide if k not in _FIELDS and not k.startswith(EXTRA_PREFIX))
    if unknown:
        raise UserInputError(f"ctr_features holds unknown tensors {unknown}: rerun ctr_lens")
    extra = {k.removeprefix(EXTRA_PREFIX): v for k, v in wide.items() if k.startswith(EXTRA_PREFIX)}
    features = CTRFeatures(**{k: v for k, v in wide.items() if k in _FIELDS}, extra=extra)
    _check_lengths(features, settings)
    return features


def _check_lengths(features: CTRFeatures, settings: CtrLensSettings) -> None:
    """Stored features must match the history lengths the run asks for (no stale file)."""
    lengths = {"max_history": features.hist, "max_long_history": features.long_hist}
    for key, tensor in lengths.items():
        wanted = getattr(settings, key)
        stored = None if tensor is None else tensor.shape[1]
        if stored != wanted:
            raise UserInputError(
                f"ctr_features were built with {key}={stored}, but ctr_lens.{key}={wanted}: "
                "rerun ctr_lens.build_ctr_features"
            )
