"""A Kedro dataset for one PyTorch state dict stored as a safetensors file."""

from __future__ import annotations

import torch
from kedro.io import AbstractDataset
from safetensors.torch import load_file, save_file

from reclora_pipeline.datasets.local_file import LocalFile


class StateDictDataset(
    LocalFile, AbstractDataset[dict[str, torch.Tensor], dict[str, torch.Tensor]]
):
    """``{name: tensor}`` in a ``.safetensors`` file, replaced atomically on save."""

    missing_hint = "run the node that trains it"

    def load(self) -> dict[str, torch.Tensor]:
        return load_file(self._readable())

    def save(self, data: dict[str, torch.Tensor]) -> None:
        # safetensors refuses shared or non-contiguous storage: save plain copies.
        tensors = {key: value.detach().contiguous().clone() for key, value in data.items()}
        self._write(lambda path: save_file(tensors, str(path)))
