"""A JSON file dataset whose save never leaves a half-written file behind."""

from __future__ import annotations

import json
from typing import Any

from kedro.io import AbstractDataset

from reclora_pipeline.datasets.local_file import LocalFile


class AtomicJSONDataset(LocalFile, AbstractDataset[dict[str, Any], dict[str, Any]]):
    """A JSON document on local disk, written to a temporary file then renamed into place."""

    def load(self) -> dict[str, Any]:
        return json.loads(self._readable().read_text(encoding="utf-8"))

    def save(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        self._write(lambda path: path.write_text(text, encoding="utf-8"))
