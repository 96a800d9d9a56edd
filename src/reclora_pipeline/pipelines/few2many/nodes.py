"""Thin few2many nodes: each reads its inputs and calls the few2many or ctr library.

Nodes that need the trained CRMs take their checkpoints positionally, in ``names`` order
(the pipeline fixes ``names`` to ``TRAINED_CRMS``).
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
import torch

from reclora_pipeline.compute import use_threads
from reclora_pipeline.ctr.feature_store import features_from_tensors
from reclora_pipeline.ctr.features import CTRVocab
from reclora_pipeline.ctr.few_shot_lens import settings_from_recipe
from reclora_pipeline.ctr.lens import StateDict, load_crms
from reclora_pipeline.ctr.lens_tables import lens_outputs, lens_scorer
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.few2many.assemble import selected_rows, with_prompts
from reclora_pipeline.few2many.recency import with_recency_prompts
from reclora_pipeline.few2many.settings import Few2ManySettings
from reclora_pipeline.few2many.subsets import draw_subsets
from reclora_pipeline.few2many.summary import subset_summary
from reclora_pipeline.item_text.prompt_table import PromptRecipe

logger = logging.getLogger(__name__)
# The CRMs run with the thread count they were trained with.
THREADS_KEY = "ctr_lens.torch_threads"


def draw_llm_subsets(
    samples: DuckDBTable,
    ctr_features: dict[str, torch.Tensor],
    ctr_vocabulary: dict[str, Any],
    lens_recipe: dict[str, Any],
    settings: Few2ManySettings,
    *checkpoints: StateDict,
    names: tuple[str, ...],
) -> pa.Table:
    """``few2many_selection``: ``sample_id`` and ``subset`` of every sample the LLM reads.

    Train rows follow ``few2many.strategy`` (``crm_uncertain`` scores the train split with
    the lens CRM); valid and test rows are always a seeded uniform draw, so every arm and
    strategy is scored on the same rows.
    """
    lens = settings_from_recipe(lens_recipe)
    if settings.strategy != "crm_uncertain":
        return draw_subsets(samples, settings)
    use_threads(lens.torch_threads, THREADS_KEY)
    models = _trained_crms(ctr_vocabulary, lens, checkpoints, names)
    features = features_from_tensors(ctr_features, lens)
    return draw_subsets(samples, settings, lens_scorer(models[lens.crm], features))


def compute_lens_outputs(
    few2many_selection: DuckDBTable,
    ctr_features: dict[str, torch.Tensor],
    ctr_vocabulary: dict[str, Any],
    lens_recipe: dict[str, Any],
    *checkpoints: StateDict,
    names: tuple[str, ...],
) -> tuple[pa.Table, pa.Table]:
    """``user_repr`` (the lens CRM's last MLP hidden vector, detached, and its click
    probability) and ``crm_predictions`` (every CRM's click probability) of the selected
    samples: the gates and the comparison read these rows only."""
    lens = settings_from_recipe(lens_recipe)
    use_threads(lens.torch_threads, THREADS_KEY)
    models = _trained_crms(ctr_vocabulary, lens, checkpoints, names)
    features = features_from_tensors(ctr_features, lens)
    sample_ids = few2many_selection.arrow().column("sample_id").to_numpy()
    return lens_outputs(models, lens.crm, features, sample_ids)


def _trained_crms(
    vocabulary: dict[str, Any],
    lens: CtrLensSettings,
    checkpoints: tuple[StateDict, ...],
    names: tuple[str, ...],
) -> dict[str, torch.nn.Module]:
    """Every trained CRM, rebuilt from the lens recipe and loaded from its checkpoint."""
    states = dict(zip(names, checkpoints, strict=True))
    return load_crms(states, CTRVocab.from_dict(vocabulary), lens)


def select_llm_samples(
    few2many_selection: DuckDBTable,
    samples: DuckDBTable,
    retrieved_histories: DuckDBTable,
    user_repr: DuckDBTable,
    item_descriptions: DuckDBTable,
    users: DuckDBTable,
    prompt_recipe: dict[str, Any],
) -> pa.Table:
    """``few2many_samples``: one row per selected sample with its subset, its prompt (the
    retrieved text-side history) and recency prompt, and the lens CRM's ``user_repr`` and
    ``crm_probability``."""
    rows = selected_rows(few2many_selection.arrow(), samples, retrieved_histories, user_repr)
    recipe = PromptRecipe.from_dict(prompt_recipe)
    items, profiles = item_descriptions.df(), users.df()
    return with_recency_prompts(
        with_prompts(rows, items, profiles, recipe), items, profiles, recipe
    )


def summarize_few2many(few2many_samples: DuckDBTable) -> dict[str, Any]:
    """Rows, positives, users and prompt length per subset."""
    summary = subset_summary(few2many_samples)
    logger.info("few2many summary: %s", summary)
    return summary
