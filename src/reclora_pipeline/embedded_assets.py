"""Data and models that ship inside PyPI packages: located on disk, never imported."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from reclora_pipeline.errors import ParameterError


def package_folder(
    package: str, requirement: str, needed_for: str, installed_by: str = "make setup"
) -> Path:
    """The install folder of ``package``, or a ParameterError saying how to install it.

    ``find_spec`` locates the files without running the package's ``__init__``,
    so heavy or dependency-less packages (installed ``--no-deps``) are safe.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ParameterError(
            f"{needed_for} needs the {requirement} package: "
            f"`pip install --no-deps {requirement}` (done by `{installed_by}`)"
        )
    return Path(spec.submodule_search_locations[0])
