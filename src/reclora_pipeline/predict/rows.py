"""The rows an arm scores: each candidate's prompt and the frozen lens CRM's ``user_repr``.

Built with the library functions that built the stored samples' rows (the retriever of
``item_text.history_table``, the prompt tables of ``item_text.prompt_table`` and
``few2many.recency``, the lens CRM of ``ctr``), from the recipes those stages recorded, so
a candidate that repeats a stored sample gets that sample's prompt and vector.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

from reclora_pipeline.ctr.features import CTRVocab, build_features
from reclora_pipeline.ctr.few_shot_lens import settings_from_recipe
from reclora_pipeline.ctr.lens import StateDict, load_crm
from reclora_pipeline.ctr.sample_features import search_tables
from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.ctr.training import user_representations
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.few2many.recency import with_recency_prompts
from reclora_pipeline.finetune.arms import check_arm
from reclora_pipeline.item_text.history_table import BATCH_ROWS, embedding_lookup, retrieve_batch
from reclora_pipeline.item_text.prompt_table import PromptRecipe, retrieved_prompt_table
from reclora_pipeline.item_text.retrieval import RetrievalRecipe
from reclora_pipeline.predict.histories import HistoryRule, histories_as_of

logger = logging.getLogger(__name__)

# The columns of the candidates the output keeps, in front of the built ones.
CANDIDATE_COLUMNS = ("row", "user_id", "item_id", "source_user_id", "source_item_id", "timestamp")


@dataclass(frozen=True)
class TextRecipe:
    """What the prompts are made of: titles, profiles, the prompt and retrieval recipes."""

    items: pd.DataFrame  # item_descriptions: item_id, title
    users: pd.DataFrame  # users: user_id and profile fields
    prompts: PromptRecipe
    retrieval: RetrievalRecipe

    @classmethod
    def of(
        cls, items: pd.DataFrame, users: pd.DataFrame, prompt_recipe: dict[str, Any]
    ) -> TextRecipe:
        """From the ``prompt_recipe`` item_text wrote (it must record the retrieval)."""
        recipe = PromptRecipe.from_dict(prompt_recipe)
        if recipe.retrieval is None:
            raise UserInputError(
                "prompt_recipe does not record how the histories were retrieved (written by an "
                "older item_text run): run `kedro run --nodes item_text.write_prompt_recipe`"
            )
        return cls(items, users, recipe, recipe.retrieval)


@dataclass(frozen=True)
class Lens:
    """The frozen lens CRM whose last hidden vector is the gates' ``user_repr``."""

    settings: CtrLensSettings
    vocab: CTRVocab
    state: StateDict

    @classmethod
    def of(
        cls,
        lens_recipe: Mapping[str, Any],
        ctr_vocabulary: dict[str, Any],
        checkpoints: Mapping[str, StateDict],
    ) -> Lens:
        """The lens ``lens_recipe`` names (``crm``), with its checkpoint."""
        settings = settings_from_recipe(lens_recipe)
        if settings.crm not in checkpoints:
            raise UserInputError(
                f"the lens CRM {settings.crm!r} (lens_recipe) has no checkpoint among "
                f"{sorted(checkpoints)}: rerun the ctr_lens pipeline"
            )
        return cls(settings, CTRVocab.from_dict(ctr_vocabulary), checkpoints[settings.crm])

    def history_reach(self) -> int:
        """How many earlier interactions the lens reads at most (recent window or SIM's
        lifelong search)."""
        return max(self.settings.max_history, self.settings.lifelong_max_history)


def prediction_rows(
    candidates: pa.Table,
    interactions: DuckDBTable,
    item_embeddings: DuckDBTable,
    history: HistoryRule,
    text: TextRecipe,
    lens: Lens,
    arm: str,
) -> pa.Table:
    """One row per candidate, in scoring order: its ids and timestamp, ``history_length``,
    ``n_earlier``, the ``prompt`` ``arm`` reads and the lens's ``user_repr``."""
    rows = histories_as_of(candidates, interactions, history.max_history)
    short = int(pc.sum(pc.less(rows.column("n_earlier"), history.min_history)).as_py() or 0)
    if short:
        logger.warning(
            "%d of %d candidates have fewer than %d earlier interactions (ingest.min_history, "
            "the fewest any sample had): their scores extrapolate", short, rows.num_rows,
            history.min_history,
        )  # fmt: skip
    lookup = embedding_lookup(item_embeddings, text.retrieval.similarity)
    retrieved = retrieve(_as_samples(rows), lookup, text.retrieval)
    column = check_arm(arm).prompt_column
    prompts = render(_as_samples(rows), retrieved, column, text)
    reach = lens.history_reach()
    lens_rows = (
        rows if reach <= history.max_history else histories_as_of(candidates, interactions, reach)
    )
    vectors = lens_vectors(lens_rows, item_embeddings, lens)
    kept = rows.select([*CANDIDATE_COLUMNS, "history_length", "n_earlier"])
    return kept.append_column("prompt", prompts).append_column(
        "user_repr",
        pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.ravel(), pa.float32()), vectors.shape[1]
        ),
    )


def _as_samples(rows: pa.Table) -> pa.Table:
    """``rows`` in the shape of the samples table: the id columns (``sample_id`` = the file
    row; label and split are placeholders, no prompt or vector depends on them) and the
    history lists."""
    n = rows.num_rows
    return pa.table({
        "sample_id": rows.column("row"), "user_id": rows.column("user_id"),
        "item_id": rows.column("item_id"), "label": pa.array(np.zeros(n, np.int8)),
        "split": pa.nulls(n, pa.string()), "history_item_ids": rows.column("history_item_ids"),
        "history_ratings": rows.column("history_ratings"),
    })  # fmt: skip


def retrieve(samples: pa.Table, lookup: torch.Tensor, recipe: RetrievalRecipe) -> pa.Table:
    """Text-side histories of ``samples``, as item_text retrieves them."""
    parts = [
        retrieve_batch(samples.slice(start, BATCH_ROWS), lookup, recipe)
        for start in range(0, samples.num_rows, BATCH_ROWS)
    ]
    return pa.concat_tables(parts)


def render(samples: pa.Table, retrieved: pa.Table, column: str, text: TextRecipe) -> pa.Array:
    """The prompts of ``column``: ``prompt`` (retrieved history) or ``recency_prompt`` (the
    last K_text items), each as few2many renders it."""
    if column == "recency_prompt":
        rendered = with_recency_prompts(samples, text.items, text.users, text.prompts)
        return rendered.column(column).combine_chunks()
    table = retrieved_prompt_table(retrieved, text.items, text.users, text.prompts)
    return table.column("prompt").combine_chunks()


def lens_vectors(rows: pa.Table, item_embeddings: DuckDBTable, lens: Lens) -> np.ndarray:
    """[n, hidden] float32: the lens CRM's ``user_repr`` of every row, from the features
    ``ctr.sample_features`` gives a stored sample: ``rows``' history lists (at least
    :meth:`Lens.history_reach` long) read through the lens's history view."""
    samples = pa.table({
        "sample_id": rows.column("row"), "user_id": rows.column("user_id"),
        "item_id": rows.column("item_id"), "history_item_ids": rows.column("history_item_ids"),
        "history_ratings": rows.column("history_ratings"),
    })  # fmt: skip
    view = lens.settings.history_view(*search_tables(item_embeddings, lens.vocab))
    features = build_features(samples, lens.vocab, view)
    model = load_crm(lens.settings.crm, lens.vocab, lens.settings, lens.state)
    return user_representations(model, features)
