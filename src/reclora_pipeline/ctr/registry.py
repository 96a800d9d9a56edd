"""Model registry: build a CTR model by name, with a seeded initialisation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reclora_pipeline.ctr.deepfm import DeepFM
from reclora_pipeline.ctr.din import DIN
from reclora_pipeline.ctr.features import CTRVocab
from reclora_pipeline.ctr.sim import SIM
from reclora_pipeline.errors import ParameterError

CTR_MODELS: dict[str, type[nn.Module]] = {"din": DIN, "sim": SIM, "deepfm": DeepFM}


def build_ctr_model(
    name: str,
    vocab: CTRVocab,
    *,
    seed: int = 0,
    parameter: str = "ctr_lens.crm",
    **kwargs: Any,
) -> nn.Module:
    """A fresh ``name`` model ('din', 'sim', 'deepfm'); ``kwargs`` go to its constructor.

    ``parameter`` names the setting the name came from, for the error message.
    """
    key = str(name).strip().lower()
    if key not in CTR_MODELS:
        raise ParameterError(
            f"{parameter}={name!r} is not a known CTR model; accepted values: "
            f"{', '.join(sorted(CTR_MODELS))}"
        )
    # fork_rng keeps the caller's global RNG untouched while making init reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return CTR_MODELS[key](vocab, **kwargs)
        except TypeError as error:
            raise ParameterError(f"bad option for CTR model {key!r}: {error}") from error
