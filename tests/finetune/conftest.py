"""Fixtures of the finetune tests: a toy Yes/No task on a tiny random Llama."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reclora_pipeline.finetune.settings import FinetuneSettings
from reclora_pipeline.personalized_lora import (
    PersonalizedLoraConfig,
    get_personalized_model,
    get_vanilla_lora_model,
)
from tests.tiny_models import tiny_llama

# The machine has two shared cores; more threads only add contention.
torch.set_num_threads(1)

VOCAB = 64
YES, NO = 3, 4  # token ids read at the last position
USER_DIM = 8
SEQ_LEN = 8
N_TRAIN = 10  # 5 micro-batches of 2: with accumulation 2 an epoch ends on a short group
N_VALID = 8
_DIST_ENV = ("DS_ACCELERATOR", "MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass
class ToyTask:
    """Random prompts with a Yes/No label and a user representation per sample."""

    personalized: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        gen = torch.Generator().manual_seed(1234)
        total = N_TRAIN + N_VALID
        self.input_ids = torch.randint(5, VOCAB, (total, SEQ_LEN), generator=gen)
        self.labels = torch.randint(0, 2, (total,), generator=gen)
        self.user_repr = torch.randn(total, USER_DIM, generator=gen)

    def model(self) -> nn.Module:
        """The same initial weights on every call."""
        base = tiny_llama(vocab_size=VOCAB, seed=0)
        torch.manual_seed(1)  # adapter init
        if self.personalized:
            # Gate dropout draws from the global RNG: resuming must restore it.
            config = PersonalizedLoraConfig(
                n_experts=2, r=4, alpha=8.0, user_dim=USER_DIM, gate_hidden=8, gate_dropout=0.1
            )
            return get_personalized_model(base, config)
        return get_vanilla_lora_model(base, PersonalizedLoraConfig(r=4, alpha=8.0))

    def settings(self, **overrides: object) -> FinetuneSettings:
        base = FinetuneSettings(
            lr=5e-3, epochs=2, micro_batch_size=2, gradient_accumulation_steps=2,
            warmup_ratio=0.2, engine="torch", seed=self.seed,
        )  # fmt: skip
        return replace(base, **overrides)

    def train_batches(self, epoch: int) -> list[dict[str, torch.Tensor]]:
        """Shuffled by (seed, epoch) only, with a private generator."""
        gen = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        order = torch.randperm(N_TRAIN, generator=gen)
        return [self._rows(order[i : i + 2]) for i in range(0, N_TRAIN, 2)]

    def _rows(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.input_ids[index],
            "labels": self.labels[index],
            "user_repr": self.user_repr[index],
        }

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self._yes_no_logits(model, batch)
        return F.cross_entropy(logits, 1 - batch["labels"].to(logits.device))  # 0 = Yes

    def _yes_no_logits(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        device = next(model.parameters()).device
        kwargs = {"input_ids": batch["input_ids"].to(device)}
        if self.personalized:
            kwargs["user_repr"] = batch["user_repr"].to(device)
        return model(**kwargs).logits[:, -1, [YES, NO]].float()

    def evaluate(self, model: nn.Module) -> float:
        """AUC of P(Yes) on the validation rows."""
        batch = self._rows(torch.arange(N_TRAIN, N_TRAIN + N_VALID))
        p_yes = self._yes_no_logits(model, batch).softmax(-1)[:, 0].cpu()
        return auc(p_yes, batch["labels"])


def auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Probability that a positive outscores a negative (ties count half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).float() + 0.5 * (diff == 0).float()).mean())


@pytest.fixture
def toy() -> ToyTask:
    return ToyTask()


@pytest.fixture(scope="session")
def deepspeed_ready() -> Iterator[None]:
    """DeepSpeed imported and a one-process group started, once per test session.

    One-off cost: importing DeepSpeed (~3 s); the CPU shared-memory op build (~60 s) is
    skipped by the engine module. Session scope because DeepSpeed caches its process
    groups: a group destroyed and started again breaks later engines.
    """
    from reclora_pipeline.finetune.engine import init_deepspeed_distributed

    saved = {key: os.environ.get(key) for key in _DIST_ENV}
    try:
        init_deepspeed_distributed()
    except ImportError as exc:  # pragma: no cover - DeepSpeed is a project dependency
        pytest.skip(f"DeepSpeed does not import here: {exc}")
    yield
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
