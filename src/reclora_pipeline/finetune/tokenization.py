"""Tokenise prompt/answer pairs once; pad them into batches for training and scoring.

Prompts arrive already rendered in the model's chat template (special tokens included),
so they are encoded with ``add_special_tokens=False``, exactly as the item_text stage
counted their length. Answers are encoded on their own by :func:`encode_answer`, which
the Yes/No scoring also uses: the token trained as the answer's first token is the one
scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100  # label value skipped by the loss (PyTorch's cross-entropy default)


def encode_answer(tokenizer: PreTrainedTokenizerBase, answer: str) -> list[int]:
    """Token ids of ``answer`` as it follows a prompt (no special tokens, no EOS)."""
    return list(tokenizer(answer, add_special_tokens=False).input_ids)


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of already chat-formatted prompts (one batched tokenizer call)."""
    if not prompts:
        return []
    return [list(ids) for ids in tokenizer(list(prompts), add_special_tokens=False).input_ids]


@dataclass(frozen=True)
class EncodedExamples:
    """Prompt + answer (+ EOS) token ids of every example, stored flat.

    Example ``i`` is ``token_ids[offsets[i]:offsets[i + 1]]``; its first
    ``prompt_lengths[i]`` tokens are the (possibly left-truncated) prompt. ``labels`` has
    the same layout, with :data:`IGNORE_INDEX` on prompt tokens so the causal-LM loss
    only counts the answer. Flat arrays make batch collation a few vectorised gathers.
    """

    token_ids: np.ndarray  # int64 [total tokens]
    labels: np.ndarray  # int64 [total tokens]
    offsets: np.ndarray  # int64 [n + 1]
    prompt_lengths: np.ndarray  # int64 [n]
    n_truncated: int  # prompts that lost tokens on their left to fit max_length
    max_length: int

    def __len__(self) -> int:
        return len(self.prompt_lengths)

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per example (prompt + answer + EOS)."""
        return np.diff(self.offsets)

    def example(self, index: int) -> np.ndarray:
        """Token ids of example ``index``."""
        return self.token_ids[self.offsets[index] : self.offsets[index + 1]]

    def prompt_token_lists(self) -> list[np.ndarray]:
        """The prompt part of every example (as trained on: truncated the same way)."""
        starts = self.offsets[:-1]
        return [self.token_ids[s : s + n] for s, n in zip(starts, self.prompt_lengths, strict=True)]


def truncate_left(ids: Sequence[int], budget: int) -> Sequence[int]:
    """The last ``budget`` tokens of ``ids`` (the oldest history goes first)."""
    return ids[len(ids) - budget :] if len(ids) > budget else ids


def encode_examples(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    answers: Sequence[str],
    max_length: int,
) -> EncodedExamples:
    """Tokenise every (prompt, answer) pair once, labels only on the answer.

    Each example is prompt ids + answer ids + the EOS id (when the tokenizer has one,
    so the model also learns to stop after the answer). An example longer than
    ``max_length`` drops prompt tokens from the LEFT, where the oldest history items
    sit (the prompts list history oldest first; the question and target item are at
    the end), and always keeps the whole answer and at least one prompt token.
    ``n_truncated`` counts the examples that were cut.
    """
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    eos = [] if tokenizer.eos_token_id is None else [int(tokenizer.eos_token_id)]
    # Answers take a handful of values ("Yes.", "No."): encode each distinct one once.
    answer_ids = {text: encode_answer(tokenizer, text) + eos for text in set(answers)}
    for text, ids in answer_ids.items():
        # The loss on the answer's first token needs one prompt position before it.
        if len(ids) + 1 > max_length:
            raise ValueError(
                f"max_length {max_length} is too small: the answer {text!r} alone takes "
                f"{len(ids)} tokens and at least one prompt token must precede it"
            )
    prompt_ids = encode_prompts(tokenizer, prompts)
    pieces, label_pieces, prompt_lengths = [], [], np.zeros(len(prompts), dtype=np.int64)
    n_truncated = 0
    for i, (ids, text) in enumerate(zip(prompt_ids, answers, strict=True)):
        answer = answer_ids[text]
        kept = truncate_left(ids, max_length - len(answer))
        n_truncated += len(kept) < len(ids)
        prompt_lengths[i] = len(kept)
        pieces.append(np.asarray(kept + answer, dtype=np.int64))
        label_pieces.append(np.asarray([IGNORE_INDEX] * len(kept) + answer, dtype=np.int64))
    offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in pieces], out=offsets[1:])
    empty = np.zeros(0, dtype=np.int64)
    return EncodedExamples(
        token_ids=np.concatenate(pieces) if pieces else empty,
        labels=np.concatenate(label_pieces) if label_pieces else empty,
        offsets=offsets,
        prompt_lengths=prompt_lengths,
        n_truncated=int(n_truncated),
        max_length=max_length,
    )


def _gather_padded(
    flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray, fill: int, left: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``flat[start:start + length]`` padded with ``fill`` to the longest: (ids, mask)."""
    width = int(lengths.max()) if len(lengths) else 0
    columns = np.arange(width)[None, :]
    # Column of each token inside its own sequence; negative on left padding.
    position = columns - (width - lengths[:, None]) if left else columns
    mask = (position >= 0) & (position < lengths[:, None])
    source = np.where(mask, starts[:, None] + position, 0)
    values = flat[source] if len(flat) else np.zeros(mask.shape, dtype=np.int64)
    return np.where(mask, values, fill), mask


def collate_training(
    examples: EncodedExamples, indices: Sequence[int] | np.ndarray, pad_id: int
) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on padding)."""
    indices = np.asarray(indices, dtype=np.int64)
    starts = examples.offsets[indices]
    lengths = examples.offsets[indices + 1] - starts
    ids, mask = _gather_padded(examples.token_ids, starts, lengths, pad_id, left=False)
    labels, _ = _gather_padded(examples.labels, starts, lengths, IGNORE_INDEX, left=False)
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask.astype(np.int64)),
        "labels": torch.from_numpy(labels),
    }


def collate_prompts(token_lists: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """LEFT-padded prompts, so every row's last real token is at the last position.

    ``position_ids`` count real tokens only (``cumsum(mask) - 1``, 0 on padding), so a
    padded prompt gets the same positions, hence the same logits, as when run alone.
    """
    lengths = np.array([len(ids) for ids in token_lists], dtype=np.int64)
    if len(lengths) == 0 or lengths.min() == 0:
        raise ValueError("collate_prompts needs at least one prompt and no empty prompt")
    flat = np.concatenate([np.asarray(ids, dtype=np.int64) for ids in token_lists])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ids, mask = _gather_padded(flat, starts, lengths, pad_id, left=True)
    mask_tensor = torch.from_numpy(mask.astype(np.int64))
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": mask_tensor,
        "position_ids": (mask_tensor.cumsum(dim=1) - 1).clamp(min=0),
    }
