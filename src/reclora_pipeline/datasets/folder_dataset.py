"""A Kedro dataset for a folder of files (a trained adapter), replaced as a whole."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from reclora_pipeline.datasets.atomic_file import default_mode
from reclora_pipeline.staging import STAGED_OUTPUTS


def _replace_folder(source: Path, target: Path) -> None:
    """Copy ``source`` beside ``target`` and swap it in only when the copy is complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    os.chmod(staging, default_mode(directory=True))  # mkdtemp makes it private
    retired = staging.with_name(staging.name + ".old")
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        if target.exists():
            target.rename(retired)
        staging.rename(target)
    except BaseException:
        if retired.exists() and not target.exists():
            retired.rename(target)  # put the last good folder back
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(retired, ignore_errors=True)


class FolderDataset(AbstractDataset[Path, Path]):
    """Saves by copying a folder into ``path``; loads as the ``Path`` of the saved folder.

    The new copy is written beside the old one and swapped in only when complete
    (during a run, into the pending copy published with its stage), so a failed
    run never leaves a half-written folder or loses the last good one.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> Path:
        folder = STAGED_OUTPUTS.read_path(self._path)
        if not folder.is_dir():
            raise DatasetError(f"{self._path} does not exist: run the node that writes it")
        return folder

    def save(self, data: Path) -> None:
        source = Path(data)
        if not source.is_dir():
            raise DatasetError(f"cannot save {source} to {self._path}: it is not a folder")
        if source.resolve() in (
            self._path.resolve(),
            STAGED_OUTPUTS.read_path(self._path).resolve(),
        ):
            return  # written in place already
        _replace_folder(source, STAGED_OUTPUTS.write_path(self._path))

    def _exists(self) -> bool:
        return STAGED_OUTPUTS.read_path(self._path).is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
