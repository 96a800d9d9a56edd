"""Finding target linear layers in a model and swapping in personalized layers."""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from reclora_pipeline.personalized_lora.config import PersonalizedLoraConfig
from reclora_pipeline.personalized_lora.context import UserContext
from reclora_pipeline.personalized_lora.layer import PersonalizedLoraLinear


def find_target_names(model: nn.Module, target_modules: tuple[str, ...]) -> list[str]:
    """Qualified names of modules whose last name component is in ``target_modules``."""
    targets = set(target_modules)
    names = []
    for name, module in model.named_modules():
        if isinstance(module, PersonalizedLoraLinear):
            raise ValueError(f"model already has a personalized LoRA layer at {name!r}")
        if name and name.rsplit(".", 1)[-1] in targets:
            if not isinstance(module, nn.Linear):
                raise TypeError(
                    f"target module {name!r} is {type(module).__name__}; only nn.Linear is "
                    "supported"
                )
            names.append(name)
    return names


def inject_personalized_layers(
    model: nn.Module, config: PersonalizedLoraConfig, context: UserContext
) -> list[str]:
    """Replace every target linear in ``model`` (in place); returns the replaced names."""
    names = find_target_names(model, config.target_modules)
    if not names:
        raise ValueError(
            f"no module named any of {list(config.target_modules)} found in {type(model).__name__}"
        )
    for name in names:
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        base_layer = getattr(parent, child_name)
        setattr(parent, child_name, PersonalizedLoraLinear(base_layer, config, context))
    return names


def iter_personalized_layers(model: nn.Module) -> Iterator[tuple[str, PersonalizedLoraLinear]]:
    """(qualified name, layer) for every personalized layer in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, PersonalizedLoraLinear):
            yield name, module


def remove_personalized_layers(model: nn.Module) -> list[str]:
    """Put the original linears back (in place); returns the restored names."""
    names = []
    for name, layer in list(iter_personalized_layers(model)):
        parent_name, _, child_name = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child_name, layer.base_layer)
        names.append(name)
    return names
