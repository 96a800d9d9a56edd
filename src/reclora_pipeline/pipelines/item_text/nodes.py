"""Thin item_text nodes: each calls the item_text library with the parsed item_text settings."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import pyarrow as pa

from reclora_pipeline.compute import (
    choose_precision,
    choose_threads,
    compute_facts,
    use_precision,
    use_threads,
)
from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.item_text import descriptions, embeddings, history_table, preparation
from reclora_pipeline.item_text.settings import ItemTextSettings
from reclora_pipeline.item_text.summary import item_text_summary

logger = logging.getLogger(__name__)


def prepare_language_model(settings: ItemTextSettings) -> dict[str, Any]:
    """Resolve ``item_text.model`` (converting the embedded GGUF once) and check it."""
    return preparation.prepare_language_model(settings)


def write_prompt_recipe(
    language_model_info: dict[str, Any], source_info: dict[str, Any], settings: ItemTextSettings
) -> dict[str, Any]:
    """Template, tokenizer and token budget of the prompts, for this stage and few2many."""
    return preparation.prompt_recipe(settings, language_model_info, source_info).to_dict()


def describe_catalog_items(items: DuckDBTable) -> pd.DataFrame:
    """One description per item (title, year, genres or authors)."""
    return descriptions.describe_items(items.df())


def embed_items(
    item_descriptions: DuckDBTable, language_model_info: dict[str, Any], settings: ItemTextSettings
) -> pa.Table:
    """Mean-pooled item embeddings (LLM or sentence encoder), reduced by PCA."""
    use_threads(settings.torch_threads, "item_text.torch_threads")
    precision = use_precision(settings.bf16, "cpu", "item_text.bf16")
    return embeddings.embed_item_table(
        item_descriptions.df(), language_model_info["name_or_path"], settings.embedder,
        settings.embed_batch_size, settings.pca_dim, seed=settings.seed, bf16=precision.bf16,
    )  # fmt: skip


def retrieve_histories(
    samples: DuckDBTable, item_embeddings: DuckDBTable, settings: ItemTextSettings
) -> pa.RecordBatchReader:
    """The text-side (K_text) history of every sample, in chronological order."""
    return history_table.retrieve_histories(samples, item_embeddings, settings)


def summarize_item_text(
    item_embeddings: DuckDBTable,
    retrieved_histories: DuckDBTable,
    language_model_info: dict[str, Any],
    settings: ItemTextSettings,
) -> dict[str, Any]:
    """Counts, the prompt template few2many renders with, and how the embeddings were
    computed."""
    precision = choose_precision(settings.bf16, "cpu", "item_text.bf16")
    threads = choose_threads(settings.torch_threads, "item_text.torch_threads")
    summary = {**item_text_summary(item_embeddings, retrieved_histories),
               "prompt_template": language_model_info.get("prompt_template"),
               "embedding_compute": compute_facts(precision, threads)}  # fmt: skip
    logger.info("item_text summary: %s", summary)
    return summary
