"""Thin ctr_lens nodes: each reads its inputs and calls the ctr library.

The features of every sample are built once (``build_ctr_features``, persisted: ids and
pointers into the users' lifelong sequences) and read by every node that trains or scores a
CRM. Nodes that need every CRM take their datasets
positionally, in ``names`` order (the pipeline fixes ``names`` to ``TRAINED_CRMS``).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from reclora_pipeline.compute import use_threads
from reclora_pipeline.ctr.feature_store import features_from_tensors, features_to_tensors
from reclora_pipeline.ctr.features import CTRVocab
from reclora_pipeline.ctr.few_shot_lens import lens_recipe
from reclora_pipeline.ctr.lens import StateDict, train_and_test
from reclora_pipeline.ctr.sample_features import sample_features, search_tables
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.duckdb_store import DuckDBTable

logger = logging.getLogger(__name__)
THREADS_KEY = "ctr_lens.torch_threads"


def fit_ctr_vocabulary(items: DuckDBTable, users: DuckDBTable) -> dict[str, Any]:
    """Item, genre and user-profile vocabularies of the CTR models."""
    return CTRVocab.fit(items.arrow(), users.arrow()).to_dict()


def build_ctr_features(
    samples: DuckDBTable,
    interactions: DuckDBTable,
    item_embeddings: DuckDBTable,
    vocabulary: dict[str, Any],
    settings: CtrLensSettings,
) -> dict[str, torch.Tensor]:
    """``ctr_features``: every sample's ids and split, pointing into the users' lifelong
    sequences (stored once), with the item tables SIM's long-history searches read."""
    use_threads(settings.torch_threads, THREADS_KEY)
    vocab = CTRVocab.from_dict(vocabulary)
    features = sample_features(samples, interactions, vocab)
    vectors, genres = search_tables(item_embeddings, vocab)
    return features_to_tensors(features, item_vectors=vectors, item_genres=genres.to(torch.int8))


def train_ctr_model(
    ctr_features: dict[str, torch.Tensor],
    vocabulary: dict[str, Any],
    settings: CtrLensSettings,
    name: str,
) -> tuple[StateDict, dict[str, float]]:
    """Train CRM ``name`` on the full train split (early stop on valid AUC); its test metrics."""
    use_threads(settings.torch_threads, THREADS_KEY)
    vocab = CTRVocab.from_dict(vocabulary)
    features = features_from_tensors(ctr_features, settings)
    state, metrics = train_and_test(name, vocab, features, settings)
    logger.info("%s: %s", name, metrics)
    return state, metrics


def write_lens_recipe(settings: CtrLensSettings) -> dict[str, Any]:
    """``lens_recipe``: the settings the lens CRM was built with, for the few-row lens of
    finetune.see_through_few_shot_lens (reclora_no_few2many)."""
    return lens_recipe(settings)


def summarize_ctr_lens(
    *metrics: dict[str, float], names: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """One entry per trained CRM, keyed by model name."""
    return dict(zip(names, metrics, strict=True))
