"""Adapter files: ``adapter_config.json`` and ``adapter_model.safetensors``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from reclora_pipeline.personalized_lora.config import PersonalizedLoraConfig

ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
ADAPTER_FORMAT = "reclora-personalized-lora"
ADAPTER_FORMAT_VERSION = 1


class AdapterMismatchError(ValueError):
    """Saved adapter does not fit the base model it is being loaded into."""


def base_model_signature(model: nn.Module, target_shapes: dict[str, list[int]]) -> dict[str, Any]:
    """What an adapter needs from its base model: identity, sizes and adapted shapes.

    ``target_shapes`` maps each adapted module to ``[in_features, out_features]``.
    """
    hf_config = getattr(model, "config", None)
    return {
        "name_or_path": str(getattr(hf_config, "_name_or_path", "") or ""),
        "architecture": type(model).__name__,
        "model_type": getattr(hf_config, "model_type", None),
        "hidden_size": getattr(hf_config, "hidden_size", None),
        "num_hidden_layers": getattr(hf_config, "num_hidden_layers", None),
        "target_shapes": target_shapes,
    }


def check_base_compatible(saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Raise :class:`AdapterMismatchError` when the structural fields differ.

    A differing ``name_or_path`` only warns: the same weights legitimately live at
    different paths (a hub id, a converted local copy).
    """
    problems = [
        f"{key}: adapter was saved for {saved.get(key)!r}, base model has {current.get(key)!r}"
        for key in ("architecture", "model_type", "hidden_size", "num_hidden_layers")
        if saved.get(key) != current.get(key)
    ]
    saved_shapes, current_shapes = saved.get("target_shapes", {}), current["target_shapes"]
    if saved_shapes != current_shapes:
        missing = sorted(set(saved_shapes) - set(current_shapes))[:3]
        extra = sorted(set(current_shapes) - set(saved_shapes))[:3]
        resized = [
            name
            for name in sorted(set(saved_shapes) & set(current_shapes))
            if list(saved_shapes[name]) != list(current_shapes[name])
        ][:3]
        problems.append(
            f"adapted modules differ (missing in base: {missing}, new in base: {extra}, "
            f"resized: {resized})"
        )
    if problems:
        raise AdapterMismatchError("adapter does not match base model: " + "; ".join(problems))
    if saved.get("name_or_path") != current.get("name_or_path"):
        warnings.warn(
            f"adapter was trained on {saved.get('name_or_path')!r}, loading into "
            f"{current.get('name_or_path')!r} (same architecture and shapes)",
            stacklevel=3,
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
