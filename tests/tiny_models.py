"""Tiny random language models and tokenizers built in code, for fast tests."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

WORDS = [
    "yes",
    "no",
    "the",
    "user",
    "is",
    "a",
    "male",
    "female",
    "movie",
    "movies",
    "watched",
    "stars",
    "star",
    "liked",
    "like",
]


def word_tokenizer(
    extra_words: list[str] | None = None, bos: bool = False
) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over a small vocabulary (unknown words -> [UNK]);
    with ``bos``, it has a ``<s>`` token that it puts first when adding special tokens."""
    vocab = {"[PAD]": 0, "[UNK]": 1, "</s>": 2, **({"<s>": 3} if bos else {})}
    for word in WORDS + list(extra_words or []):
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos:
        backend.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", vocab["<s>"])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", eos_token="</s>",
        **({"bos_token": "<s>"} if bos else {}),
    )  # fmt: skip


def tiny_llama(vocab_size: int = 64, seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer Llama with hidden size 32, random weights."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def save_tiny_llama(folder: Path, extra_words: list[str] | None = None) -> Path:
    """A tiny Llama + word tokenizer saved as a Hugging Face folder."""
    tokenizer = word_tokenizer(extra_words)
    tiny_llama(vocab_size=len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
