"""Up-front validation of the item_text parameters, before any model is loaded."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.item_text.embeddings import EMBEDDERS, check_pca_dim, sentence_encoder_folder
from reclora_pipeline.item_text.prompts import PromptTemplate
from reclora_pipeline.item_text.retrieval import METRICS, STRATEGIES


def template_name(params: dict[str, Any], ingest_format: str) -> str:
    """``item_text.template``, or the dataset family's default (books for GoodReads)."""
    return params.get("template") or ("books" if ingest_format == "goodreads" else "movies")


def validate_parameters(params: dict[str, Any], ingest_format: str, llm_hidden_size: int) -> None:
    """Raise ParameterError for any item_text setting the pipeline cannot use."""
    choices = (
        ("embedder", EMBEDDERS),
        ("text_retrieval", STRATEGIES),
        ("crm_retrieval", STRATEGIES),
        ("similarity", METRICS),
    )
    for key, accepted in choices:
        if params.get(key) not in accepted:
            raise ParameterError(
                f"unknown item_text.{key} {params.get(key)!r}; accepted values: {list(accepted)}"
            )
    for key in ("k_text", "k_crm", "max_prompt_tokens", "embed_batch_size"):
        if not isinstance(params.get(key), int) or params[key] < 1:
            raise ParameterError(
                f"item_text.{key} must be a positive integer, got {params.get(key)!r}"
            )
    PromptTemplate.from_config(template_name(params, ingest_format), params.get("templates") or {})
    if params["embedder"] == "llm":
        dim = llm_hidden_size
    else:
        dim = int(AutoConfig.from_pretrained(sentence_encoder_folder()).hidden_size)
    check_pca_dim(params.get("pca_dim"), dim)
