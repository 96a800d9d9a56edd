"""A Kedro dataset for one PyTorch state dict stored as a safetensors file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from kedro.io import AbstractDataset, DatasetError
from safetensors.torch import load_file, save_file


class StateDictDataset(AbstractDataset[dict[str, torch.Tensor], dict[str, torch.Tensor]]):
    """``{name: tensor}`` in a ``.safetensors`` file, replaced atomically on save."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> dict[str, torch.Tensor]:
        if not self._filepath.exists():
            raise DatasetError(f"{self._filepath} does not exist: run the node that trains it")
        return load_file(self._filepath)

    def save(self, data: dict[str, torch.Tensor]) -> None:
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self._filepath.parent, suffix=".tmp")
        os.close(handle)
        try:
            # safetensors refuses shared or non-contiguous storage: save plain copies.
            save_file({k: v.detach().contiguous().clone() for k, v in data.items()}, temporary)
            os.replace(temporary, self._filepath)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
