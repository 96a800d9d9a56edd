"""The project's real catalog, pointed at a temporary folder, plus parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kedro.io import DataCatalog, MemoryDataset

from reclora_pipeline.stage_settings import parse_groups
from reclora_pipeline.workspace import project_root


def project_parameters() -> dict[str, Any]:
    """Every ``conf/base/parameters_*.yml`` merged (one top-level key per pipeline)."""
    merged: dict[str, Any] = {}
    for path in sorted((project_root() / "conf/base").glob("parameters_*.yml")):
        merged.update(yaml.safe_load(path.read_text()))
    return merged


def temporary_catalog(folder: Path, parameters: dict[str, Any]) -> DataCatalog:
    """conf/base/catalog.yml with every database and file path moved under ``folder``, and
    each stage's parameter group parsed into its settings object."""
    config = yaml.safe_load((project_root() / "conf/base/catalog.yml").read_text())
    entries = {name: dict(entry) for name, entry in config.items() if not name.startswith("_")}
    for entry in entries.values():
        if "database" in entry:
            entry["database"] = str(folder / "db.duckdb")
        for key in ("filepath", "path"):
            if key in entry:
                entry[key] = str(folder / Path(entry[key]).name)
    catalog = DataCatalog.from_config(entries)
    # Nodes receive parsed settings (ParsedSettingsHooks does this in a kedro run).
    for name, value in parse_groups(parameters, parameters).items():
        catalog[f"params:{name}"] = MemoryDataset(value)
    return catalog
