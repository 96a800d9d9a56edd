"""A Kedro dataset for a folder of files (a trained adapter), replaced as a whole."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError


class FolderDataset(AbstractDataset[Path, Path]):
    """Saves by copying a folder into ``path``; loads as the ``Path`` of the saved folder.

    The new copy is written beside the old one and swapped in only when complete,
    so a failed run never leaves a half-written folder or loses the last good one.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> Path:
        if not self._path.is_dir():
            raise DatasetError(f"{self._path} does not exist: run the node that writes it")
        return self._path

    def save(self, data: Path) -> None:
        source = Path(data)
        if not source.is_dir():
            raise DatasetError(f"cannot save {source} to {self._path}: it is not a folder")
        if source.resolve() == self._path.resolve():
            return  # written in place already
        self._path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self._path.parent, prefix=f".{self._path.name}."))
        retired = staging.with_name(staging.name + ".old")
        try:
            shutil.copytree(source, staging, dirs_exist_ok=True)
            if self._path.exists():
                self._path.rename(retired)
            staging.rename(self._path)
        except BaseException:
            if retired.exists() and not self._path.exists():
                retired.rename(self._path)  # put the last good folder back
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(retired, ignore_errors=True)

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
