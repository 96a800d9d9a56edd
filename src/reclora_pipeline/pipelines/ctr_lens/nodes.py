"""Thin ctr_lens nodes: each calls the ctr library with its parameters."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from reclora_pipeline.ctr.features import CTRFeatures, CTRVocab, build_features
from reclora_pipeline.ctr.registry import build_ctr_model
from reclora_pipeline.ctr.training import (
    TrainConfig,
    evaluate,
    score,
    train_ctr,
    user_representations,
)
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import ParameterError

logger = logging.getLogger(__name__)


def fit_ctr_vocabulary(
    items: DuckDBTable, users: DuckDBTable, params: dict[str, Any], trained: tuple[str, ...]
) -> dict[str, Any]:
    """Item, genre and user-profile vocabularies of the CTR models (parameters checked first)."""
    check_ctr_parameters(params, trained)
    return CTRVocab.fit(items.arrow(), users.arrow()).to_dict()


def _features(
    samples: DuckDBTable,
    retrieved_histories: DuckDBTable,
    vocabulary: dict[str, Any],
    params: dict[str, Any],
) -> CTRFeatures:
    """Features of every sample, ordered by sample_id (CRM-side long history joined)."""
    table = samples.connection.sql(
        "SELECT sample_id, user_id, item_id, label, split, history_item_ids, history_ratings "
        f"FROM {samples.sql_name} ORDER BY sample_id"
    ).to_arrow_table()
    long_history = retrieved_histories.connection.sql(
        f"SELECT sample_id, crm_history_item_ids, crm_history_ratings FROM {retrieved_histories.sql_name}"
    ).to_arrow_table()
    features = build_features(
        table,
        CTRVocab.from_dict(vocabulary),
        max_history=int(params["max_history"]),
        long_history=long_history,
        max_long_history=int(params["max_long_history"]),
    )
    features.extra["split"] = torch.from_numpy(_split_codes(table.column("split")))
    return features


def _split_codes(split: pa.ChunkedArray) -> np.ndarray:
    """0 = train, 1 = valid, 2 = test."""
    names = np.asarray(split.to_pylist())
    return np.select([names == "train", names == "valid"], [0, 1], default=2).astype(np.int64)


def _by_split(features: CTRFeatures, code: int) -> CTRFeatures:
    return features.select(torch.nonzero(features.extra["split"] == code).squeeze(1))


def _train_config(params: dict[str, Any], name: str) -> TrainConfig:
    settings = {**params["training"], **params.get("models", {}).get(name, {}).get("training", {})}
    return TrainConfig(**settings, seed=int(params["seed"]))


def _model_options(params: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(params.get("models", {}).get(name, {}).get("options", {}))


def train_ctr_model(
    samples: DuckDBTable,
    retrieved_histories: DuckDBTable,
    vocabulary: dict[str, Any],
    params: dict[str, Any],
    name: str,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Train one CRM on the full train split (early stop on valid AUC); its test metrics."""
    features = _features(samples, retrieved_histories, vocabulary, params)
    train, valid, test = (_by_split(features, code) for code in (0, 1, 2))
    model = build_ctr_model(
        name,
        CTRVocab.from_dict(vocabulary),
        seed=int(params["seed"]),
        **_model_options(params, name),
    )
    result = train_ctr(model, train, valid, _train_config(params, name))
    test_metrics = evaluate(model, test)
    metrics = {
        "valid_auc": float(result.best_valid_auc),
        "test_auc": float(test_metrics["auc"]),
        "test_logloss": float(test_metrics["logloss"]),
        "n_test": int(test_metrics["n"]),
        "epochs": int(result.epochs),
        "best_epoch": int(result.best_epoch),
    }
    logger.info("%s: %s", name, metrics)
    return result.state_dict, metrics


def _trained_crm(
    name: str, vocabulary: dict[str, Any], params: dict[str, Any], state: dict[str, torch.Tensor]
) -> torch.nn.Module:
    """The CRM ``name`` rebuilt from its parameters and loaded from its checkpoint."""
    model = build_ctr_model(
        name,
        CTRVocab.from_dict(vocabulary),
        seed=int(params["seed"]),
        **_model_options(params, name),
    )
    model.load_state_dict(state)
    return model


def summarize_ctr_lens(**metrics_by_model: dict[str, float]) -> dict[str, dict[str, float]]:
    """One entry per trained CRM, keyed by model name."""
    return {name.removeprefix("ctr_metrics_"): values for name, values in metrics_by_model.items()}


def compute_user_representations(
    samples: DuckDBTable,
    retrieved_histories: DuckDBTable,
    vocabulary: dict[str, Any],
    params: dict[str, Any],
    **checkpoints: dict[str, torch.Tensor],
) -> pa.Table:
    """``user_repr``: the frozen CRM's last MLP hidden vector for every sample, detached."""
    name = params["crm"]
    if f"ctr_checkpoint_{name}" not in checkpoints:
        raise ParameterError(
            f"ctr_lens.crm={name!r} is not one of the trained CRMs; accepted values: "
            f"{sorted(key.removeprefix('ctr_checkpoint_') for key in checkpoints)}"
        )
    features = _features(samples, retrieved_histories, vocabulary, params)
    model = _trained_crm(name, vocabulary, params, checkpoints[f"ctr_checkpoint_{name}"])
    vectors = user_representations(model, features)
    return pa.table(
        {
            "sample_id": pa.array(features.sample_id.numpy()),
            "user_repr": pa.FixedSizeListArray.from_arrays(
                pa.array(vectors.ravel(), pa.float32()), vectors.shape[1]
            ),
        }
    )


def score_all_samples(
    samples: DuckDBTable,
    retrieved_histories: DuckDBTable,
    vocabulary: dict[str, Any],
    params: dict[str, Any],
    **checkpoints: dict[str, torch.Tensor],
) -> pa.Table:
    """``crm_predictions``: every trained CRM's click probability for every sample.

    Evaluation compares the CRMs with the LLM arms on the same test rows, and the
    ``crm_uncertain`` Few2Many strategy ranks training samples by the lens's confidence.
    """
    features = _features(samples, retrieved_histories, vocabulary, params)
    columns: dict[str, Any] = {"sample_id": pa.array(features.sample_id.numpy())}
    for key, state in sorted(checkpoints.items()):
        name = key.removeprefix("ctr_checkpoint_")
        model = _trained_crm(name, vocabulary, params, state)
        columns[name] = pa.array(score(model, features), pa.float64())
    return pa.table(columns)


def check_ctr_parameters(params: dict[str, Any], trained: tuple[str, ...]) -> None:
    """Fail early on an unknown ``ctr_lens.crm`` (before any training)."""
    if params["crm"] not in trained:
        raise ParameterError(
            f"ctr_lens.crm={params['crm']!r} is not a trained CRM; accepted values: {list(trained)}"
        )
