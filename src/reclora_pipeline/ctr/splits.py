"""The split tag every CTR sample carries: codes, and the rows of one split."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from reclora_pipeline.ctr.features import CTRFeatures

SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}


def split_codes(split: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Each split name's code (``SPLIT_CODES``; an unknown or null name counts as test)."""
    codes = np.full(len(split), SPLIT_CODES["test"], dtype=np.int8)
    for name in ("train", "valid"):
        # Compared in Arrow: no Python string per row.
        chosen = pc.fill_null(pc.equal(split, name), False).to_numpy(zero_copy_only=False)
        codes[chosen] = SPLIT_CODES[name]
    return codes


def of_split(features: CTRFeatures, split: str) -> CTRFeatures:
    """The rows of ``features`` in ``split`` (train, valid or test), in their order."""
    chosen = features.extra["split"] == SPLIT_CODES[split]
    return features.select(torch.nonzero(chosen).squeeze(1))
