"""The lens stage's CRMs: built from the settings, trained and tested, reloaded from checkpoints."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from reclora_pipeline.ctr.features import CTRFeatures, CTRVocab
from reclora_pipeline.ctr.registry import build_ctr_model
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.ctr.splits import of_split
from reclora_pipeline.ctr.training import capped_rows, evaluate, train_ctr

StateDict = Mapping[str, torch.Tensor]


def new_crm(name: str, vocab: CTRVocab, settings: CtrLensSettings) -> nn.Module:
    """A freshly initialised CRM ``name`` with its configured options (seeded)."""
    return build_ctr_model(name, vocab, seed=settings.seed, **settings.model_options(name))


def load_crm(name: str, vocab: CTRVocab, settings: CtrLensSettings, state: StateDict) -> nn.Module:
    """CRM ``name`` rebuilt from the settings and loaded from its checkpoint."""
    model = new_crm(name, vocab, settings)
    model.load_state_dict(state)
    return model


def load_crms(
    states: Mapping[str, StateDict], vocab: CTRVocab, settings: CtrLensSettings
) -> dict[str, nn.Module]:
    """Every CRM of ``states`` (name -> checkpoint), reloaded."""
    return {name: load_crm(name, vocab, settings, state) for name, state in states.items()}


def train_and_test(
    name: str, vocab: CTRVocab, features: CTRFeatures, settings: CtrLensSettings
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Train CRM ``name`` on the train split (early stop on valid AUC); its best weights
    and its valid / test metrics."""
    config = settings.train_config(name)
    train, valid, test = (of_split(features, split) for split in ("train", "valid", "test"))
    valid, test = (capped_rows(rows, config.max_eval_rows, config.seed) for rows in (valid, test))
    model = new_crm(name, vocab, settings)
    result = train_ctr(model, train, valid, config)
    tested = evaluate(model, test)
    metrics = {
        "valid_auc": float(result.best_valid_auc),
        "test_auc": float(tested["auc"]),
        "test_logloss": float(tested["logloss"]),
        "n_valid": len(valid),
        "n_test": int(tested["n"]),
        "epochs": int(result.epochs),
        "best_epoch": int(result.best_epoch),
    }
    return result.state_dict, metrics
