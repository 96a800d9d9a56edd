"""Yes/No token lookup and P(Yes) scoring with left padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.finetune.arms import build_arm
from reclora_pipeline.finetune.scoring import (
    answer_token_ids,
    call_model,
    fp32_lm_head,
    score_prompts,
    yes_probability,
)
from reclora_pipeline.finetune.tokenization import collate_prompts, encode_prompts
from reclora_pipeline.personalized_lora import PersonalizedLoraConfig
from tests.finetune.test_arms import CONFIG, perturb_lora
from tests.tiny_models import tiny_llama, word_tokenizer

TOKENIZER = word_tokenizer(["Yes", "No", "."])
# Lengths 1..9 words, out of order, so batches mix lengths and the sort must be undone.
PROMPTS = [
    "the user liked the movie a movie",
    "movie",
    "a male user watched movies the stars like liked",
    "the user is female",
    "stars",
    "the movie is a movie user",
    "a user liked",
]


def test_answer_ids_are_the_first_tokens_of_yes_and_no():
    yes_id, no_id = answer_token_ids(TOKENIZER)
    assert (yes_id, no_id) == tuple(TOKENIZER.convert_tokens_to_ids(["Yes", "No"]))


def test_unknown_answer_tokens_are_a_clear_error():
    # The base word tokenizer only knows lowercase "yes"/"no": both are [UNK].
    with pytest.raises(ParameterError, match="'Yes.' encodes to no known token.*'No.'"):
        answer_token_ids(word_tokenizer())


class SameFirstToken:
    """A stand-in tokenizer that starts every text with the same token."""

    name_or_path = "odd-tokenizer"
    unk_token_id = 0

    def __call__(self, text: str, add_special_tokens: bool = False):
        return type("Encoding", (), {"input_ids": [7, len(text)]})()

    def convert_ids_to_tokens(self, token: int) -> str:
        return "▁"


def test_answers_sharing_their_first_token_are_a_clear_error():
    with pytest.raises(ParameterError, match="'odd-tokenizer'.*both start with token '▁'"):
        answer_token_ids(SameFirstToken())


def alone(model, prompts, **users) -> np.ndarray:
    """Each prompt scored in a batch of its own (no padding at all)."""
    rows = []
    for i, prompt in enumerate(prompts):
        own = {key: value[i : i + 1] for key, value in users.items()}
        rows.append(score_prompts(model, TOKENIZER, [prompt], batch_size=1, **own)[0])
    return np.array(rows)


def test_left_padded_batches_score_like_each_prompt_alone():
    model = tiny_llama(len(TOKENIZER))
    batched = score_prompts(model, TOKENIZER, PROMPTS, batch_size=3)
    assert batched.shape == (len(PROMPTS),)
    assert ((batched > 0) & (batched < 1)).all()
    np.testing.assert_allclose(batched, alone(model, PROMPTS), rtol=0, atol=1e-5)


@pytest.mark.parametrize("arm", ["reclora", "reclora_no_lens"])
def test_user_inputs_follow_their_prompts_through_the_length_sort(arm):
    arm_model = build_arm(arm, tiny_llama(len(TOKENIZER)), CONFIG, n_users=len(PROMPTS))
    perturb_lora(arm_model)
    if arm_model.user_embedding is not None:  # as if trained: the user vectors start at zero
        with torch.no_grad():
            arm_model.user_embedding.weight.normal_(generator=torch.Generator().manual_seed(0))
    users = {
        "user_repr": torch.randn(len(PROMPTS), CONFIG.user_dim),
        "user_ids": torch.arange(1, len(PROMPTS) + 1),
    }
    batched = score_prompts(arm_model, TOKENIZER, PROMPTS, batch_size=4, **users)
    np.testing.assert_allclose(batched, alone(arm_model, PROMPTS, **users), rtol=0, atol=1e-5)
    # The users matter: shuffled user inputs change the scores.
    shuffled = {key: value.roll(1, 0) for key, value in users.items()}
    assert not np.allclose(
        batched, score_prompts(arm_model, TOKENIZER, PROMPTS, batch_size=4, **shuffled)
    )


def test_token_lists_score_like_strings_and_max_length_cuts_on_the_left():
    model = tiny_llama(len(TOKENIZER))
    token_lists = encode_prompts(TOKENIZER, PROMPTS)
    from_strings = score_prompts(model, TOKENIZER, PROMPTS, batch_size=2)
    np.testing.assert_allclose(
        score_prompts(model, TOKENIZER, token_lists, batch_size=2), from_strings
    )
    cut = score_prompts(model, TOKENIZER, PROMPTS, batch_size=2, max_length=3)
    expected = score_prompts(model, TOKENIZER, [ids[-3:] for ids in token_lists], batch_size=2)
    np.testing.assert_allclose(cut, expected)


def test_scoring_restores_the_train_mode():
    arm_model = build_arm(
        "vanilla_lora", tiny_llama(len(TOKENIZER)), PersonalizedLoraConfig(), n_users=0
    )
    arm_model.train()
    score_prompts(arm_model, TOKENIZER, PROMPTS[:2], batch_size=2)
    assert arm_model.training


def test_bf16_autocast_stays_close_to_fp32():
    model = tiny_llama(len(TOKENIZER))
    fp32 = score_prompts(model, TOKENIZER, PROMPTS, batch_size=4)
    bf16 = score_prompts(model, TOKENIZER, PROMPTS, batch_size=4, bf16=True)
    np.testing.assert_allclose(bf16, fp32, atol=2e-2)


@pytest.mark.parametrize("as_arm", [False, True])
def test_the_lm_head_runs_in_fp32_inside_bf16_autocast(as_arm):
    base = tiny_llama(len(TOKENIZER))
    model = build_arm("vanilla_lora", base, PersonalizedLoraConfig(), n_users=0) if as_arm else base
    batch = collate_prompts(encode_prompts(TOKENIZER, PROMPTS[:3]), pad_id=0)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        rounded = call_model(model, batch, logits_to_keep=1).logits
        with fp32_lm_head(model):
            exact = call_model(model, batch, logits_to_keep=1).logits
    assert rounded.dtype == torch.bfloat16 and exact.dtype == torch.float32
    # The same hidden states; only the head's rounding differs.
    torch.testing.assert_close(exact, rounded.float(), atol=0.05, rtol=0.02)
    assert not base.get_output_embeddings()._forward_hooks  # removed on exit


def test_yes_probability_rejects_right_padding():
    batch = collate_prompts([[3, 4, 5], [6]], pad_id=0)
    right = {
        "input_ids": torch.tensor([[3, 4, 5], [6, 0, 0]]),
        "attention_mask": batch["attention_mask"].flip(1),
    }
    with pytest.raises(ValueError, match="left-padded"):
        yes_probability(tiny_llama(len(TOKENIZER)), right, 18, 19)


CONVERTED_SMOLLM2 = Path(__file__).resolve().parents[2] / "data/06_models/smollm2-135m-instruct"


def smollm2_tokenizer():
    """The real SmolLM2 tokenizer: from the converted folder if present, else the GGUF (~3 s)."""
    from transformers import AutoTokenizer

    from reclora_pipeline.item_text.language_model import (
        EMBEDDED_GGUF,
        embedded_gguf_folder,
        is_converted,
    )

    if is_converted(CONVERTED_SMOLLM2):
        return AutoTokenizer.from_pretrained(CONVERTED_SMOLLM2)
    return AutoTokenizer.from_pretrained(embedded_gguf_folder(), gguf_file=EMBEDDED_GGUF)


QUESTIONS = [
    "The user watched Heat (1995), 5 stars. Will the user like Casino (1995)? Answer yes or no.",
    "Will the user like the movie Toy Story (1995)? You should ONLY tell me yes or no.",
    "The user is a female. Her job is writer. Will she like Jaws (1975)? Yes or no.",
]


@pytest.mark.slow
def test_real_smollm2_answer_tokens_are_yes_and_no_after_a_chat_prompt():
    from reclora_pipeline.item_text.prompts import chat_prompt

    tokenizer = smollm2_tokenizer()
    yes_id, no_id = answer_token_ids(tokenizer)
    assert tokenizer.convert_ids_to_tokens([yes_id, no_id]) == ["Yes", "No"]
    prompt = chat_prompt(tokenizer, QUESTIONS[0])
    # Tokenised after the prompt, the answer has the ids it has on its own.
    for answer in ("Yes.", "No."):
        joint = tokenizer(prompt + answer, add_special_tokens=False).input_ids
        assert joint[-2:] == tokenizer(answer, add_special_tokens=False).input_ids


@pytest.mark.slow
@pytest.mark.skipif(
    not (CONVERTED_SMOLLM2 / "model.safetensors").is_file(),
    reason="needs the converted SmolLM2 of a workspace (loading the GGUF takes ~15-25 s)",
)
def test_real_smollm2_left_padding_scores_like_each_prompt_alone():
    from transformers import AutoModelForCausalLM

    from reclora_pipeline.item_text.prompts import chat_prompt

    tokenizer = smollm2_tokenizer()
    prompts = [chat_prompt(tokenizer, question) for question in QUESTIONS]
    model = AutoModelForCausalLM.from_pretrained(CONVERTED_SMOLLM2, dtype=torch.float32).eval()
    batched = score_prompts(model, tokenizer, prompts, batch_size=3)
    single = [score_prompts(model, tokenizer, [p], batch_size=1)[0] for p in prompts]
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-5)
