"""Answer-only training loss and P(Yes) scoring of prompts.

Every function takes either an :class:`~reclora_pipeline.finetune.arms.ArmModel`, which
picks the user input it needs, or a bare Hugging Face / peft / personalized model (then
only ``user_repr`` is passed on, and only when given).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.finetune.arms import MODEL_INPUTS, ArmModel
from reclora_pipeline.finetune.batching import (
    consecutive_batches,
    length_sorted_batches,
    padding_share,
)
from reclora_pipeline.finetune.tokenization import (
    IGNORE_INDEX,
    collate_prompts,
    encode_answer,
    encode_prompts,
    truncate_left,
)
from reclora_pipeline.item_text.prompts import ANSWERS

logger = logging.getLogger(__name__)


def answer_token_ids(tokenizer: PreTrainedTokenizerBase) -> tuple[int, int]:
    """(yes_id, no_id): the first token of "Yes." and of "No." after a prompt.

    Looked up through the tokenizer (:func:`encode_answer`, as used for the training
    targets) so the scored token is the trained one. Raises :class:`ParameterError`
    when either is unknown or both share their first token.
    """
    texts = (ANSWERS[1], ANSWERS[0])
    first = []
    for text in texts:
        ids = encode_answer(tokenizer, text)
        first.append(ids[0] if ids else None)
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    unk = tokenizer.unk_token_id
    problems = [
        f"{text!r} encodes to no known token (ids {encode_answer(tokenizer, text)})"
        for text, token in zip(texts, first, strict=True)
        if token is None or (unk is not None and token == unk)
    ]
    if not problems and first[0] == first[1]:
        token = tokenizer.convert_ids_to_tokens(first[0])
        problems.append(f"{texts[0]!r} and {texts[1]!r} both start with token {token!r}")
    if problems:
        raise ParameterError(
            f"the tokenizer of {name!r} cannot score Yes/No answers: {'; '.join(problems)}. "
            "Choose an item_text.model whose tokenizer has distinct 'Yes' and 'No' tokens"
        )
    return int(first[0]), int(first[1])


def call_model(
    model: nn.Module,
    batch: Mapping[str, torch.Tensor],
    user_repr: torch.Tensor | None = None,
    user_ids: torch.Tensor | None = None,
    **model_kwargs: Any,
) -> Any:
    """One model call on ``batch`` (labels are not passed: the loss is computed here)."""
    # An ArmModel, or a DeepSpeed engine around one (it forwards the same arguments).
    if isinstance(getattr(model, "module", model), ArmModel):
        return model(batch, user_repr=user_repr, user_ids=user_ids, **model_kwargs)
    if user_ids is not None:
        raise TypeError("user_ids are only understood by an ArmModel (reclora_no_lens)")
    inputs = {key: batch[key] for key in MODEL_INPUTS if key in batch}
    extra = {} if user_repr is None else {"user_repr": user_repr}
    return model(**inputs, **extra, **model_kwargs)


def answer_loss(
    model: nn.Module,
    batch: Mapping[str, torch.Tensor],
    user_repr: torch.Tensor | None = None,
    user_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean next-token cross-entropy over the answer tokens (labels != -100).

    Only the positions that predict an answer token go through the LM head (a boolean
    ``logits_to_keep``): the head is a [hidden x vocab] matrix, and projecting every
    prompt position would cost more than the answer needs.
    """
    labels = batch["labels"]
    targets = labels[:, 1:]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets != IGNORE_INDEX  # position t predicts token t + 1
    if not keep.any():
        raise ValueError("the batch has no answer token to learn (all labels are -100)")
    output = call_model(model, batch, user_repr, user_ids, logits_to_keep=keep, use_cache=False)
    logits = output.logits  # [answer tokens, vocab], rows in (batch row, position) order
    return F.cross_entropy(logits.float(), targets[keep[:, :-1]])


def yes_probability(
    model: nn.Module,
    batch: Mapping[str, torch.Tensor],
    yes_id: int,
    no_id: int,
    user_repr: torch.Tensor | None = None,
    user_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """P(Yes) per row from a left-padded batch: softmax over the two answer logits."""
    mask = batch.get("attention_mask")
    if mask is not None and not bool(mask[:, -1].all()):
        raise ValueError("yes_probability needs left-padded prompts (see collate_prompts)")
    output = call_model(model, batch, user_repr, user_ids, logits_to_keep=1, use_cache=False)
    pair = output.logits[:, -1, [yes_id, no_id]].float()
    return torch.softmax(pair, dim=-1)[:, 0]


@contextmanager
def fp32_lm_head(model: nn.Module) -> Iterator[None]:
    """Compute the LM head in fp32 inside a bf16 autocast region.

    A bf16 logit of magnitude 10-30 is rounded to steps of 0.06-0.12, so P(Yes) =
    sigmoid(yes - no) falls on a coarse grid and many rows tie, which costs AUC. The head
    is a small share of a scoring pass (one position per row), so recomputing it in fp32
    costs little.
    """
    inner = model.model if isinstance(model, ArmModel) else model
    get_head = getattr(inner, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    if not isinstance(head, nn.Linear):
        yield
        return

    def full_precision(module: nn.Linear, inputs: tuple[torch.Tensor, ...], _: Any) -> torch.Tensor:
        with torch.autocast(inputs[0].device.type, enabled=False):
            bias = None if module.bias is None else module.bias.float()
            return F.linear(inputs[0].float(), module.weight.float(), bias)

    handle = head.register_forward_hook(full_precision)
    try:
        yield
    finally:
        handle.remove()


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def score_prompts(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str] | Sequence[Sequence[int]],
    user_repr: torch.Tensor | None = None,
    batch_size: int = 16,
    bf16: bool = False,
    progress: bool = False,
    *,
    user_ids: torch.Tensor | None = None,
    max_length: int | None = None,
) -> np.ndarray:
    """P(Yes) of every prompt (strings or token id lists), in the input order.

    Prompts are batched by length (longest first) so padding stays small; ``user_repr``
    / ``user_ids`` rows follow their prompts. ``max_length`` cuts prompts on the left
    as :func:`~.tokenization.encode_examples` does. ``bf16`` runs under bfloat16
    autocast, with the LM head in fp32 (:func:`fp32_lm_head`). The model's train/eval mode
    is restored afterwards.
    """
    if len(prompts) == 0:
        return np.zeros(0, dtype=np.float64)
    for name, value in (("user_repr", user_repr), ("user_ids", user_ids)):
        if value is not None and not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(value).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    token_lists = (
        encode_prompts(tokenizer, prompts) if isinstance(prompts[0], str) else list(prompts)
    )
    if max_length is not None:
        token_lists = [truncate_left(ids, max_length) for ids in token_lists]
    yes_id, no_id = answer_token_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = _device(model)
    lengths = np.array([len(ids) for ids in token_lists])
    batches = length_sorted_batches(lengths, batch_size)
    logger.info("scoring %d prompts: padding is %.1f%% of the tokens (%.1f%% in input order)",
                len(lengths), 100 * padding_share(lengths, batches),
                100 * padding_share(lengths, consecutive_batches(len(lengths), batch_size)))  # fmt: skip
    scores = np.zeros(len(token_lists), dtype=np.float64)
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    )
    was_training = model.training
    model.eval()
    try:
        with (
            torch.no_grad(),
            autocast,
            fp32_lm_head(model) if bf16 else nullcontext(),
            tqdm(total=len(lengths), disable=not progress, unit="prompt", desc="scoring") as bar,
        ):
            for rows in batches:
                batch = collate_prompts([token_lists[i] for i in rows], pad_id)
                batch = {key: value.to(device) for key, value in batch.items()}
                index = torch.from_numpy(rows)
                probabilities = yes_probability(
                    model,
                    batch,
                    yes_id,
                    no_id,
                    user_repr=None if user_repr is None else user_repr[index].to(device),
                    user_ids=None if user_ids is None else user_ids[index].to(device),
                )
                scores[rows] = probabilities.cpu().numpy()
                bar.update(len(rows))
    finally:
        model.train(was_training)
    return scores
