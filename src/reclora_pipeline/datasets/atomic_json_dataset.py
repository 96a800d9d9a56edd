"""A JSON file dataset whose save never leaves a half-written file behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from reclora_pipeline.datasets.atomic_file import write_atomically


class AtomicJSONDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """A JSON document on local disk, written to a temporary file then renamed into place."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        if not self._filepath.exists():
            raise DatasetError(f"{self._filepath} does not exist: run the pipeline that writes it")
        return json.loads(self._filepath.read_text(encoding="utf-8"))

    def save(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        write_atomically(self._filepath, lambda path: path.write_text(text, encoding="utf-8"))

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
