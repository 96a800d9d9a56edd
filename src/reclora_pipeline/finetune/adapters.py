"""Saving and loading a trained arm: adapter files plus ``arm.json``.

A folder holds the adapter's own files (personalized LoRA or peft, both named
``adapter_config.json`` / ``adapter_model.safetensors``), ``arm.json`` (arm name, LoRA
config, the base model's signature) and, for reclora_no_lens, the learned user
embedding in ``user_embedding.safetensors``. Loading needs only this module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.finetune.arms import ArmModel, check_arm
from reclora_pipeline.personalized_lora import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    AdapterMismatchError,
    PersonalizedLoraConfig,
    PersonalizedLoraModel,
)
from reclora_pipeline.personalized_lora.persistence import (
    base_model_signature,
    check_base_compatible,
)

ARM_FILE = "arm.json"
USER_EMBEDDING_FILE = "user_embedding.safetensors"
ARM_FORMAT = "reclora-arm"
ARM_FORMAT_VERSION = 1


class AdapterFolderError(UserInputError):
    """An adapter folder is missing, incomplete or not written by :func:`save_arm`."""


class ArmMismatchError(AdapterMismatchError):
    """The adapter was saved for another base model than the one given."""


def required_files(arm: str) -> list[str]:
    """Files a complete folder of ``arm`` holds."""
    files = [ARM_FILE, ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME]
    if check_arm(arm).user_input == "user_ids":
        files.append(USER_EMBEDDING_FILE)
    return files


def save_arm(arm_model: ArmModel, folder: str | Path) -> Path:
    """Write ``arm_model``'s adapter folder (replacing an existing one only when complete)."""
    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    arm_model.model.save_pretrained(str(staging))
    if arm_model.user_embedding is not None:
        weight = arm_model.user_embedding.weight.detach().cpu().contiguous()
        save_file({"weight": weight}, str(staging / USER_EMBEDDING_FILE))
    payload = {
        "format": ARM_FORMAT,
        "format_version": ARM_FORMAT_VERSION,
        "arm": arm_model.arm,
        "lora_config": arm_model.lora_config.to_dict(),
        "base_model": arm_model.base_signature,
    }
    (staging / ARM_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True))
    # Swap in the new folder only now, so a crash never leaves a half-written adapter
    # under the final name.
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old)
    else:
        staging.rename(folder)
    return folder


def read_arm_file(folder: Path) -> dict[str, Any]:
    """``arm.json`` of ``folder``, checked to be complete and of a known arm."""
    if not folder.is_dir():
        raise AdapterFolderError(f"adapter folder {folder} does not exist")
    path = folder / ARM_FILE
    if not path.is_file():
        raise AdapterFolderError(
            f"adapter folder {folder} has no {ARM_FILE} (not written by save_arm?)"
        )
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise AdapterFolderError(f"{path} is not valid JSON ({error})") from None
    if payload.get("format") != ARM_FORMAT or payload.get("format_version") != ARM_FORMAT_VERSION:
        raise AdapterFolderError(
            f"{path} is not a {ARM_FORMAT} v{ARM_FORMAT_VERSION} file "
            f"(format {payload.get('format')!r}, version {payload.get('format_version')!r})"
        )
    missing_keys = [key for key in ("arm", "lora_config", "base_model") if key not in payload]
    if missing_keys:
        raise AdapterFolderError(f"{path} lacks {missing_keys}")
    missing = [name for name in required_files(payload["arm"]) if not (folder / name).is_file()]
    if missing:
        raise AdapterFolderError(
            f"adapter folder {folder} of arm {payload['arm']!r} is incomplete: missing {missing}"
        )
    return payload


def load_arm(folder: str | Path, base_model: nn.Module) -> ArmModel:
    """The arm saved in ``folder`` on ``base_model`` (wrapped in place), frozen, eval mode."""
    folder = Path(folder)
    payload = read_arm_file(folder)
    arm = payload["arm"]
    spec = check_arm(arm)
    config = PersonalizedLoraConfig.from_dict(payload["lora_config"])
    current = base_model_signature(base_model, config.target_modules)
    try:
        check_base_compatible(payload["base_model"], current, source=folder)
    except AdapterMismatchError as error:
        raise ArmMismatchError(str(error)) from None
    if spec.personalized:
        model = PersonalizedLoraModel.from_pretrained(base_model, folder, is_trainable=False)
    else:
        from peft import PeftModel  # imported on use: slow to import (see vanilla.py)

        model = PeftModel.from_pretrained(base_model, str(folder), is_trainable=False)
    embedding = None
    if spec.user_input == "user_ids":
        weight = load_file(str(folder / USER_EMBEDDING_FILE))["weight"]
        embedding = nn.Embedding.from_pretrained(weight, freeze=True)
    arm_model = ArmModel(arm, model, current, config, embedding)
    arm_model.requires_grad_(False)
    return arm_model.eval()
