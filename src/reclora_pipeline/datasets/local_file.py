"""The shared part of the project's single-file datasets: staged, atomic writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.io import DatasetError

from reclora_pipeline.datasets.atomic_file import write_atomically
from reclora_pipeline.staging import STAGED_OUTPUTS


class LocalFile:
    """One local file, written atomically; during a run, to its pending copy.

    Subclasses implement ``load``/``save`` with ``_readable`` and ``_write`` and
    say in ``missing_hint`` how a user gets the file written.
    """

    missing_hint = "run the pipeline that writes it"

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def _readable(self) -> Path:
        """The file to read: this run's pending copy if there is one, else the published file."""
        path = STAGED_OUTPUTS.read_path(self._filepath)
        if not path.exists():
            raise DatasetError(f"{self._filepath} does not exist: {self.missing_hint}")
        return path

    def _write(self, write: Callable[[Path], None]) -> None:
        write_atomically(STAGED_OUTPUTS.write_path(self._filepath), write)

    def _exists(self) -> bool:
        return STAGED_OUTPUTS.read_path(self._filepath).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
