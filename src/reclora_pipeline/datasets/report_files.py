"""Report files for people: a markdown/text file and PNG figures, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from matplotlib.figure import Figure

from reclora_pipeline.datasets.atomic_file import write_atomically


class _ReportFile:
    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def _require(self) -> Path:
        if not self._filepath.exists():
            raise DatasetError(f"{self._filepath} does not exist: run the pipeline that writes it")
        return self._filepath

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


class AtomicTextDataset(_ReportFile, AbstractDataset[str, str]):
    """A UTF-8 text file (e.g. the markdown metrics table)."""

    def load(self) -> str:
        return self._require().read_text(encoding="utf-8")

    def save(self, data: str) -> None:
        write_atomically(self._filepath, lambda path: path.write_text(data, encoding="utf-8"))


class FigureDataset(_ReportFile, AbstractDataset[Figure, bytes]):
    """A matplotlib figure saved as PNG; loads the PNG bytes."""

    def load(self) -> bytes:
        return self._require().read_bytes()

    def save(self, data: Figure) -> None:
        write_atomically(
            self._filepath,
            lambda path: data.savefig(path, format="png", dpi=120, bbox_inches="tight"),
        )
