"""Tokenising prompt/answer pairs once and padding them into batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reclora_pipeline.finetune.scoring import answer_loss
from reclora_pipeline.finetune.tokenization import (
    IGNORE_INDEX,
    collate_prompts,
    collate_training,
    encode_examples,
)
from tests.tiny_models import tiny_llama, word_tokenizer

PROMPTS = [
    "the user is a male the user watched movie movies",
    "the user liked the movie",
    "a movie",
]
ANSWERS = ["Yes.", "No.", "Yes."]


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer(["Yes", "No", "."])


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids


def test_examples_are_prompt_then_answer_then_eos_with_labels_on_the_answer(tokenizer):
    examples = encode_examples(tokenizer, PROMPTS, ANSWERS, max_length=64)
    assert len(examples) == 3 and examples.n_truncated == 0
    for i, (prompt, answer) in enumerate(zip(PROMPTS, ANSWERS, strict=True)):
        expected = ids(tokenizer, prompt) + ids(tokenizer, answer) + [tokenizer.eos_token_id]
        assert examples.example(i).tolist() == expected
        n_prompt = len(ids(tokenizer, prompt))
        assert examples.prompt_lengths[i] == n_prompt
        start, stop = examples.offsets[i], examples.offsets[i + 1]
        labels = examples.labels[start:stop]
        assert (labels[:n_prompt] == IGNORE_INDEX).all()
        assert labels[n_prompt:].tolist() == expected[n_prompt:]
    assert examples.lengths.tolist() == [len(examples.example(i)) for i in range(3)]


def test_no_eos_is_added_when_the_tokenizer_has_none(tokenizer):
    no_eos = word_tokenizer(["Yes", "No", "."])
    no_eos.eos_token = None
    examples = encode_examples(no_eos, ["a movie"], ["No."], max_length=16)
    assert examples.example(0).tolist() == ids(tokenizer, "a movie No.")


def test_long_prompts_lose_their_oldest_tokens_and_keep_the_answer(tokenizer):
    # Answer + EOS take 3 tokens, so at most 4 prompt tokens fit in 7.
    examples = encode_examples(tokenizer, PROMPTS, ANSWERS, max_length=7)
    assert examples.n_truncated == 2
    assert examples.lengths.max() == 7
    first = ids(tokenizer, PROMPTS[0])
    assert examples.example(0).tolist() == first[-4:] + ids(tokenizer, "Yes.") + [2]
    assert examples.prompt_lengths.tolist() == [4, 4, 2]  # the short prompt is untouched
    assert examples.prompt_token_lists()[0].tolist() == first[-4:]


def test_max_length_must_leave_room_for_the_answer_and_one_prompt_token(tokenizer):
    encode_examples(tokenizer, PROMPTS, ANSWERS, max_length=4)  # 1 prompt token + 3
    with pytest.raises(ValueError, match="max_length 3 is too small.*'(Yes|No).'"):
        encode_examples(tokenizer, PROMPTS, ANSWERS, max_length=3)


def test_prompts_and_answers_must_pair_up(tokenizer):
    with pytest.raises(ValueError, match="3 prompts but 2 answers"):
        encode_examples(tokenizer, PROMPTS, ANSWERS[:2], max_length=16)


def test_training_batches_are_right_padded_with_ignored_labels(tokenizer):
    examples = encode_examples(tokenizer, PROMPTS, ANSWERS, max_length=64)
    batch = collate_training(examples, [2, 0], pad_id=0)
    width = int(examples.lengths[0])
    assert batch["input_ids"].shape == (2, width)
    short = len(examples.example(2))
    assert batch["input_ids"][0, :short].tolist() == examples.example(2).tolist()
    assert (batch["input_ids"][0, short:] == 0).all()
    assert batch["attention_mask"][0].tolist() == [1] * short + [0] * (width - short)
    assert (batch["labels"][0, short:] == IGNORE_INDEX).all()
    assert batch["input_ids"][1].tolist() == examples.example(0).tolist()
    assert batch["attention_mask"][1].all()


def test_padding_with_the_eos_id_keeps_the_eos_label(tokenizer):
    # SmolLM2 pads with its EOS (<|im_end|>): labels must not be derived from pad ids.
    examples = encode_examples(tokenizer, PROMPTS, ANSWERS, max_length=64)
    eos = tokenizer.eos_token_id
    batch = collate_training(examples, [0, 2], pad_id=eos)
    short = len(examples.example(2))
    assert batch["labels"][1, short - 1] == eos
    assert (batch["labels"][1, short:] == IGNORE_INDEX).all()
    assert (batch["labels"] == eos).sum() == 2


def test_prompt_batches_are_left_padded_with_positions_from_the_first_real_token():
    batch = collate_prompts([[5, 6, 7], [8]], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert batch["position_ids"].tolist() == [[0, 1, 2], [0, 0, 0]]
    with pytest.raises(ValueError, match="no empty prompt"):
        collate_prompts([[5], []], pad_id=0)


def test_the_loss_counts_only_answer_tokens(tokenizer):
    examples = encode_examples(tokenizer, PROMPTS, ANSWERS, max_length=64)
    batch = collate_training(examples, [0, 1, 2], pad_id=0)
    model = tiny_llama(vocab_size=len(tokenizer))
    with torch.no_grad():
        ours = answer_loss(model, batch)
        # Reference: full logits, shifted, cross-entropy on the labelled positions only.
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        targets = batch["labels"][:, 1:]
        answer = targets != IGNORE_INDEX
        expected = torch.nn.functional.cross_entropy(logits[:, :-1][answer], targets[answer])
        assert int(answer.sum()) == 9  # 3 rows x ("Yes"/"No", ".", EOS)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)


def test_collation_gathers_the_same_tokens_as_slicing(tokenizer):
    rng = np.random.default_rng(0)
    words = ["the", "user", "movie", "liked", "stars", "a"]
    prompts = [" ".join(rng.choice(words, size=rng.integers(1, 12))) for _ in range(20)]
    answers = [["Yes.", "No."][i % 2] for i in range(20)]
    examples = encode_examples(tokenizer, prompts, answers, max_length=10)
    order = rng.permutation(20)
    batch = collate_training(examples, order, pad_id=0)
    for row, index in enumerate(order):
        n = len(examples.example(index))
        assert batch["input_ids"][row, :n].tolist() == examples.example(index).tolist()
        assert int(batch["attention_mask"][row].sum()) == n
