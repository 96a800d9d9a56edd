"""Adapter files: ``adapter_config.json`` and ``adapter_model.safetensors``."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.personalized_lora.config import PersonalizedLoraConfig
from reclora_pipeline.personalized_lora.injection import find_target_names

ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
ADAPTER_FORMAT = "reclora-personalized-lora"
ADAPTER_FORMAT_VERSION = 1


class AdapterMismatchError(UserInputError):
    """Saved adapter does not fit the base model it is being loaded into."""


# Recorded by every signature; a difference means another model family or size.
STRUCTURE_KEYS = ("architecture", "model_type", "hidden_size", "num_hidden_layers")
# Recorded since the weight fingerprint was added: compared only when the saved
# signature has them, so adapters saved before still load.
RECENT_KEYS = ("vocab_size", "weight_format")


def base_model_signature(model: nn.Module, target_modules: tuple[str, ...]) -> dict[str, Any]:
    """What an adapter needs from its base model: identity, sizes, adapted shapes, weights.

    ``model`` is the plain base model (before any adapter is injected). ``target_shapes``
    maps each adapted module to ``[in_features, out_features]``; ``fingerprint`` tells
    two models of the same shapes apart (:func:`base_fingerprint`); ``weight_format`` is
    ``int8`` for a base loaded in 8 bit (bitsandbytes), else ``float``.
    """
    hf_config = getattr(model, "config", None)
    names = find_target_names(model, target_modules)
    shapes, formats = {}, set()
    for name in names:
        linear = model.get_submodule(name)
        shapes[name] = [linear.in_features, linear.out_features]
        formats.add("float" if linear.weight.is_floating_point() else "int8")
    return {
        "name_or_path": str(getattr(hf_config, "_name_or_path", "") or ""),
        "architecture": type(model).__name__,
        "model_type": getattr(hf_config, "model_type", None),
        "hidden_size": getattr(hf_config, "hidden_size", None),
        "num_hidden_layers": getattr(hf_config, "num_hidden_layers", None),
        "target_shapes": shapes,
        "vocab_size": getattr(hf_config, "vocab_size", None),
        "fingerprint": base_fingerprint(model, names),
        "weight_format": "int8" if "int8" in formats else "float",
    }


def base_fingerprint(model: nn.Module, target_names: list[str]) -> str:
    """A short hash of sampled base weights: tells two same-shaped models apart.

    Hashes up to 64 evenly spaced rows of the input embeddings and of the last adapted
    linear, rounded to bfloat16 so the same model loaded in fp32 or bf16 agrees. An 8-bit
    linear (int8 codes, not weights) is left out: its embeddings stay in floating point.
    """
    tensors = []
    # Models without input embeddings (not transformers models) hash their linear only.
    if callable(getattr(model, "get_input_embeddings", None)):
        tensors.append(model.get_input_embeddings().weight)
    if target_names:
        linear_weight = model.get_submodule(target_names[-1]).weight
        if linear_weight.is_floating_point():
            tensors.append(linear_weight)
    digest = hashlib.sha256()
    for weight in tensors:
        rows = weight.detach()[:: max(1, weight.shape[0] // 64)][:64]
        digest.update(rows.to(torch.bfloat16).float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def describe_base(signature: dict[str, Any]) -> str:
    """``'name' (llama, hidden 576, 30 layers, vocab 49152, weights abcd...)``."""
    parts = [
        str(signature.get("model_type")),
        f"hidden {signature.get('hidden_size')}",
        f"{signature.get('num_hidden_layers')} layers",
    ]
    # Signatures saved before the fingerprint have no vocabulary size or weight hash.
    if "vocab_size" in signature:
        parts.append(f"vocab {signature['vocab_size']}")
    if "fingerprint" in signature:
        parts.append(f"weights {signature['fingerprint']}")
    return f"{signature.get('name_or_path') or '<unnamed>'!r} ({', '.join(parts)})"


def check_base_compatible(
    saved: dict[str, Any], current: dict[str, Any], source: str | Path | None = None
) -> None:
    """Raise :class:`AdapterMismatchError` unless ``current`` is the base model of ``saved``.

    ``saved`` is the signature written with the adapter (in ``source``, named in the
    message), ``current`` the :func:`base_model_signature` of the given base model. A
    differing ``name_or_path`` is no error: the same weights legitimately live at
    different paths (a hub id, a converted local copy). It warns only when the saved
    signature has no fingerprint to confirm the weights.
    """
    keys = STRUCTURE_KEYS + tuple(key for key in RECENT_KEYS if key in saved)
    problems = [
        f"{key} {saved.get(key)!r} vs {current.get(key)!r}"
        for key in keys
        if saved.get(key) != current.get(key)
    ]
    shapes_problem = _target_shapes_problem(
        saved.get("target_shapes", {}), current["target_shapes"]
    )
    if shapes_problem:
        problems.append(shapes_problem)
    fingerprinted = "fingerprint" in saved
    if not problems and fingerprinted and saved["fingerprint"] != current.get("fingerprint"):
        problems.append("same shapes but different weights")
    if problems:
        adapter = f"adapter {source}" if source is not None else "adapter"
        raise AdapterMismatchError(
            f"{adapter} was saved for base model {describe_base(saved)}, but the given base "
            f"model is {describe_base(current)}: {'; '.join(problems)}"
        )
    if not fingerprinted and saved.get("name_or_path") != current.get("name_or_path"):
        warnings.warn(
            f"adapter was trained on {saved.get('name_or_path')!r}, loading into "
            f"{current.get('name_or_path')!r} (same architecture and shapes)",
            stacklevel=3,
        )


def _target_shapes_problem(
    saved: dict[str, list[int]], current: dict[str, list[int]]
) -> str | None:
    """How the adapted modules differ, or None when they agree."""
    if saved == current:
        return None
    missing = sorted(set(saved) - set(current))[:3]
    extra = sorted(set(current) - set(saved))[:3]
    resized = [
        name
        for name in sorted(set(saved) & set(current))
        if list(saved[name]) != list(current[name])
    ][:3]
    return (
        f"adapted modules differ (missing in base: {missing}, new in base: {extra}, "
        f"resized: {resized})"
    )


def save_adapter(
    folder: str | Path,
    config: PersonalizedLoraConfig,
    base_signature: dict[str, Any],
    state: dict[str, torch.Tensor],
) -> Path:
    """Write the two adapter files into ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": ADAPTER_FORMAT,
        "format_version": ADAPTER_FORMAT_VERSION,
        "config": config.to_dict(),
        "base_model": base_signature,
    }
    (folder / ADAPTER_CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True))
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state.items()}
    save_file(tensors, str(folder / ADAPTER_WEIGHTS_NAME), metadata={"format": "pt"})
    return folder


def read_adapter_config(folder: str | Path) -> tuple[PersonalizedLoraConfig, dict[str, Any]]:
    """(config, saved base-model signature) from ``folder``."""
    path = Path(folder) / ADAPTER_CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {ADAPTER_CONFIG_NAME} in {Path(folder)}")
    payload = json.loads(path.read_text())
    if payload.get("format") != ADAPTER_FORMAT:
        raise AdapterMismatchError(f"{path} is not a {ADAPTER_FORMAT} adapter config")
    if payload.get("format_version") != ADAPTER_FORMAT_VERSION:
        raise AdapterMismatchError(
            f"{path} has format_version {payload.get('format_version')!r}, "
            f"expected {ADAPTER_FORMAT_VERSION}"
        )
    return PersonalizedLoraConfig.from_dict(payload["config"]), payload["base_model"]


def read_adapter_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """Adapter tensors from ``folder`` (on CPU)."""
    path = Path(folder) / ADAPTER_WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {ADAPTER_WEIGHTS_NAME} in {Path(folder)}")
    return load_file(str(path))


def check_state_matches(saved: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Same keys and shapes, or :class:`AdapterMismatchError` naming the differences."""
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    resized = [
        f"{name}: saved {tuple(saved[name].shape)} vs model {tuple(expected[name].shape)}"
        for name in sorted(set(saved) & set(expected))
        if saved[name].shape != expected[name].shape
    ]
    if missing or unexpected or resized:
        raise AdapterMismatchError(
            f"adapter weights do not match the model: missing {missing[:3]} "
            f"({len(missing)} total), unexpected {unexpected[:3]} ({len(unexpected)} total), "
            f"resized {resized[:3]}"
        )
