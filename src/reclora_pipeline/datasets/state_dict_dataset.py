"""A Kedro dataset for one PyTorch state dict stored as a safetensors file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from kedro.io import AbstractDataset, DatasetError
from safetensors.torch import load_file, save_file

from reclora_pipeline.datasets.atomic_file import write_atomically


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
        # safetensors refuses shared or non-contiguous storage: save plain copies.
        tensors = {key: value.detach().contiguous().clone() for key, value in data.items()}
        write_atomically(self._filepath, lambda path: save_file(tensors, str(path)))

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
