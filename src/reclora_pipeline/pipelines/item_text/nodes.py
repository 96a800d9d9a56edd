"""Thin item_text nodes: each calls the item_text library with its parameters."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.item_text import descriptions, embeddings, language_model, retrieval
from reclora_pipeline.item_text.parameters import validate_parameters
from reclora_pipeline.item_text.prompt_table import render_prompt_table

# Hidden size of the embedded SmolLM2-135M-Instruct (checked again after conversion).
EMBEDDED_HIDDEN_SIZE = 576

logger = logging.getLogger(__name__)


def prepare_language_model(params: dict[str, Any], ingest_params: dict[str, Any]) -> dict[str, Any]:
    """Check every item_text parameter, then resolve ``item_text.model``.

    The first node of the pipeline, so bad settings fail before any heavy work;
    the embedded GGUF is converted once, after a check of the other settings.
    """
    name = params["model"]
    if name == language_model.EMBEDDED_MODEL:
        # The embedded model's size is known without converting it first.
        validate_parameters(params, ingest_params["format"], EMBEDDED_HIDDEN_SIZE)
    path = language_model.resolve_model(name, params["converted_model_folder"])
    config = language_model.check_causal_lm(path)
    validate_parameters(params, ingest_params["format"], int(config.hidden_size))
    return {
        "model": name,
        "name_or_path": path,
        "model_type": config.model_type,
        "hidden_size": config.hidden_size,
    }


def describe_catalog_items(items: DuckDBTable) -> pd.DataFrame:
    """One description per item (title, year, genres or authors)."""
    return descriptions.describe_items(items.df())


def embed_items(
    item_descriptions: DuckDBTable, language_model_info: dict[str, Any], params: dict[str, Any]
) -> pa.Table:
    """Mean-pooled item embeddings (LLM or sentence encoder), reduced by PCA."""
    torch.manual_seed(int(params.get("seed", 0)))
    items = item_descriptions.df().sort_values("item_id")
    texts = items.description.tolist()
    if params["embedder"] == "llm":
        model, tokenizer = language_model.load_causal_lm(language_model_info["name_or_path"])
        encoder = embeddings.llm_encoder(model)
    else:
        encoder, tokenizer = embeddings.load_sentence_encoder()
    started = time.perf_counter()
    raw = embeddings.mean_pooled_embeddings(
        encoder, tokenizer, texts, int(params["embed_batch_size"])
    )
    elapsed = time.perf_counter() - started
    logger.info(
        "embedded %d items with %s in %.1f s (%.0f items/s)",
        len(texts),
        params["embedder"],
        elapsed,
        len(texts) / elapsed,
    )
    reduced = embeddings.pca_reduce(raw, params.get("pca_dim"))
    return pa.table(
        {
            "item_id": pa.array(items.item_id.to_numpy(), pa.int32()),
            "embedding": pa.FixedSizeListArray.from_arrays(
                pa.array(reduced.ravel(), pa.float32()), reduced.shape[1]
            ),
        }
    )


def _embedding_lookup(item_embeddings: DuckDBTable, metric: str) -> torch.Tensor:
    """[max_item_id + 1, d] table indexed by item id (row 0 and unknown ids are zero)."""
    table = item_embeddings.arrow()
    ids = table.column("item_id").to_numpy()
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    lookup = np.zeros((int(ids.max()) + 1, vectors.shape[1]), dtype=np.float32)
    lookup[ids] = vectors
    return retrieval.normalised_table(lookup, metric)


def retrieve_histories(
    samples: DuckDBTable, item_embeddings: DuckDBTable, params: dict[str, Any]
) -> pa.Table:
    """Short text-side and long CRM-side histories for every sample, in chronological order."""
    lookup = _embedding_lookup(item_embeddings, params["similarity"])
    columns = "sample_id, user_id, item_id, label, split, history_item_ids, history_ratings"
    reader = samples.connection.sql(
        f"SELECT {columns} FROM {samples.sql_name} ORDER BY sample_id"
    ).to_arrow_reader(65_536)
    parts, count, started = [], 0, time.perf_counter()
    for batch in reader:
        history, lengths = retrieval.padded(batch.column("history_item_ids"), np.int64)
        ratings, _ = retrieval.padded(batch.column("history_ratings"), np.float32)
        targets = batch.column("item_id").to_numpy()
        out = {
            name: batch.column(name)
            for name in ("sample_id", "user_id", "item_id", "label", "split")
        }
        for side, k in (("text", int(params["k_text"])), ("crm", int(params["k_crm"]))):
            positions, counts = retrieval.select_positions(
                history, lengths, targets, k, params[f"{side}_retrieval"], lookup
            )
            out[f"{side}_history_item_ids"] = retrieval.gather_lists(
                history.astype(np.int32), positions, counts
            )
            out[f"{side}_history_ratings"] = retrieval.gather_lists(ratings, positions, counts)
        parts.append(pa.table(out))
        count += batch.num_rows
    elapsed = time.perf_counter() - started
    logger.info(
        "retrieved histories for %d samples in %.1f s (%.0f samples/s)",
        count,
        elapsed,
        count / max(elapsed, 1e-9),
    )
    return pa.concat_tables(parts)


def build_prompts(
    retrieved_histories: DuckDBTable,
    item_descriptions: DuckDBTable,
    users: DuckDBTable,
    language_model_info: dict[str, Any],
    params: dict[str, Any],
    ingest_params: dict[str, Any],
) -> pa.Table:
    """A chat prompt and its Yes/No answer for every sample, within the token budget."""
    histories = retrieved_histories.connection.sql(
        f"SELECT sample_id, user_id, item_id, label, split, text_history_item_ids, text_history_ratings "
        f"FROM {retrieved_histories.sql_name} ORDER BY sample_id"
    ).df()
    started = time.perf_counter()
    table = render_prompt_table(
        histories,
        ("text_history_item_ids", "text_history_ratings"),
        item_descriptions.df(),
        users.df(),
        params,
        ingest_params["format"],
        language_model_info["name_or_path"],
    )
    logger.info("rendered %d prompts in %.1f s", table.num_rows, time.perf_counter() - started)
    return table


def summarize_item_text(item_embeddings: DuckDBTable, prompts_table: DuckDBTable) -> dict[str, int]:
    """Counts and prompt-length statistics, for people and scripts."""
    embedded = item_embeddings.connection.sql(
        f"SELECT count(*), max(len(embedding)) FROM {item_embeddings.sql_name}"
    ).fetchall()[0]
    stats = prompts_table.connection.sql(
        f"SELECT count(*), quantile_disc(prompt_tokens, 0.5), quantile_disc(prompt_tokens, 0.95), max(prompt_tokens) FROM {prompts_table.sql_name}"
    ).fetchall()[0]
    summary = {
        "items_embedded": int(embedded[0]),
        "embedding_dim": int(embedded[1]),
        "samples": int(stats[0]),
        "median_prompt_tokens": int(stats[1]),
        "p95_prompt_tokens": int(stats[2]),
        "max_prompt_tokens": int(stats[3]),
    }
    logger.info("item_text summary: %s", summary)
    return summary
