"""Tiny random models shared by the personalized LoRA tests (imported, not collected)."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from reclora_pipeline.personalized_lora import PersonalizedLoraModel

VOCAB = 128


def tiny_llama(seed: int = 0, hidden: int = 64, layers: int = 2) -> LlamaForCausalLM:
    """Random 2-layer Llama, identical for identical arguments, in eval mode."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=VOCAB,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def tiny_qwen2(seed: int = 0) -> Qwen2ForCausalLM:
    """Random 2-layer Qwen2 (its q/k/v projections carry a bias)."""
    torch.manual_seed(seed)
    config = Qwen2Config(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=VOCAB,
        max_position_embeddings=64,
    )
    return Qwen2ForCausalLM(config).eval()


def token_ids(batch: int = 3, length: int = 7, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def user_vectors(batch: int = 3, dim: int = 256, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def randomize_banks(model: PersonalizedLoraModel, seed: int = 3, std: float = 0.05) -> None:
    """Give every B a non-zero value so the adapters change the output."""
    generator = torch.Generator().manual_seed(seed)
    for _, layer in model.personalized_layers():
        layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=generator) * std)
