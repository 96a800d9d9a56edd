"""Report files for people: a markdown/text file and PNG figures, written atomically."""

from __future__ import annotations

from kedro.io import AbstractDataset
from matplotlib.figure import Figure

from reclora_pipeline.datasets.local_file import LocalFile


class AtomicTextDataset(LocalFile, AbstractDataset[str, str]):
    """A UTF-8 text file (e.g. the markdown metrics table)."""

    def load(self) -> str:
        return self._readable().read_text(encoding="utf-8")

    def save(self, data: str) -> None:
        self._write(lambda path: path.write_text(data, encoding="utf-8"))


class FigureDataset(LocalFile, AbstractDataset[Figure, bytes]):
    """A matplotlib figure saved as PNG; loads the PNG bytes."""

    def load(self) -> bytes:
        return self._readable().read_bytes()

    def save(self, data: Figure) -> None:
        self._write(lambda path: data.savefig(path, format="png", dpi=120, bbox_inches="tight"))
