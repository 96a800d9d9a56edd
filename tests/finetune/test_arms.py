"""The four arms: building, calling with user inputs, training on a tiny batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reclora_pipeline.errors import ParameterError, UserInputError
from reclora_pipeline.finetune.arms import (
    ARM_SPECS,
    ARMS,
    ArmModel,
    build_arm,
    trainable_parameters,
)
from reclora_pipeline.finetune.scoring import answer_loss
from reclora_pipeline.finetune.tokenization import collate_training, encode_examples
from reclora_pipeline.personalized_lora import PersonalizedLoraConfig
from tests.tiny_models import tiny_llama, word_tokenizer

CONFIG = PersonalizedLoraConfig(n_experts=2, r=4, user_dim=8, gate_hidden=8, gate_dropout=0.0)
N_USERS = 3
TOKENIZER = word_tokenizer(["Yes", "No", "."])
PROMPTS = ["the user liked the movie", "a male user watched movies", "the movie stars"]
ANSWERS = ["Yes.", "No.", "No."]


def make_arm(arm: str, seed: int = 0) -> ArmModel:
    return build_arm(arm, tiny_llama(len(TOKENIZER), seed=seed), CONFIG, n_users=N_USERS)


def training_batch() -> dict[str, torch.Tensor]:
    examples = encode_examples(TOKENIZER, PROMPTS, ANSWERS, max_length=32)
    return collate_training(examples, range(len(PROMPTS)), TOKENIZER.pad_token_id)


def user_inputs(seed: int = 1) -> dict[str, torch.Tensor]:
    """Both user inputs for the 3 rows: each arm reads the one it needs."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "user_repr": torch.randn(len(PROMPTS), CONFIG.user_dim, generator=generator),
        "user_ids": torch.tensor([1, 2, 3]),
    }


def train(arm_model: ArmModel, steps: int, lr: float = 1e-2) -> list[float]:
    """AdamW steps on the fixed batch; the loss before each step."""
    optimizer = torch.optim.AdamW(trainable_parameters(arm_model), lr=lr)
    batch, users = training_batch(), user_inputs()
    arm_model.train()
    losses = []
    for _ in range(steps):
        loss = answer_loss(arm_model, batch, **users)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("arm", ARMS)
def test_each_arm_trains_only_its_adapters_and_the_loss_decreases(arm):
    torch.manual_seed(0)
    arm_model = make_arm(arm)
    trainable = trainable_parameters(arm_model)
    base = arm_model.model.get_input_embeddings().weight
    assert trainable and all(param is not base for param in trainable)
    assert not base.requires_grad
    frozen_before = base.detach().clone()
    losses = train(arm_model, steps=6)
    assert losses[-1] < losses[0] - 0.05, losses
    torch.testing.assert_close(base, frozen_before, rtol=0, atol=0)


def test_personalized_arms_have_gates_and_vanilla_lora_has_none():
    vanilla = sum(p.numel() for p in trainable_parameters(make_arm("vanilla_lora")))
    reclora = sum(p.numel() for p in trainable_parameters(make_arm("reclora")))
    no_lens = sum(p.numel() for p in trainable_parameters(make_arm("reclora_no_lens")))
    assert vanilla < reclora
    assert no_lens == reclora + (N_USERS + 1) * CONFIG.user_dim  # the user-id embedding


def perturb_lora(arm_model: ArmModel, seed: int = 0) -> None:
    """Random LoRA up-projections (they start at zero), so the adapters change outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in arm_model.named_parameters():
            if "lora_B" in name:
                param.copy_(0.5 * torch.randn(param.shape, generator=generator))


def logits(arm_model: ArmModel, **users: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return arm_model.eval()(training_batch(), **users).logits


def test_reclora_reads_user_repr_and_no_lens_reads_user_ids():
    reclora, no_lens = make_arm("reclora"), make_arm("reclora_no_lens")
    for arm_model in (reclora, no_lens):
        perturb_lora(arm_model)
    with torch.no_grad():  # as if trained: the user vectors start at zero
        no_lens.user_embedding.weight.normal_(generator=torch.Generator().manual_seed(0))
    users = user_inputs()
    other_repr = users["user_repr"].flip(0)
    assert not torch.allclose(
        logits(reclora, **users), logits(reclora, user_repr=other_repr, user_ids=users["user_ids"])
    )
    # no_lens ignores user_repr and depends on the ids.
    torch.testing.assert_close(
        logits(no_lens, **users), logits(no_lens, user_repr=other_repr, user_ids=users["user_ids"])
    )
    assert not torch.allclose(
        logits(no_lens, **users), logits(no_lens, user_ids=torch.tensor([3, 1, 2]))
    )


def test_no_lens_starts_every_user_at_the_same_gate():
    # Users without training rows keep the zero vector: the average user's gate, not a
    # random one.
    no_lens = make_arm("reclora_no_lens")
    perturb_lora(no_lens)
    assert not no_lens.user_embedding.weight.any()
    torch.testing.assert_close(
        logits(no_lens, user_ids=torch.tensor([1, 2, 3])),
        logits(no_lens, user_ids=torch.tensor([3, 0, 2])),
    )


def test_no_few2many_is_reclora_through_the_few_row_lens():
    spec = ARM_SPECS["reclora_no_few2many"]
    assert (spec.personalized, spec.user_input, spec.lens) == (True, "user_repr", "few_shot")
    assert {s.lens for arm, s in ARM_SPECS.items() if arm != "reclora_no_few2many"} == {"full"}
    assert make_arm("reclora_no_few2many").user_input == "user_repr"


def test_vanilla_lora_ignores_user_inputs():
    vanilla = make_arm("vanilla_lora")
    perturb_lora(vanilla)
    torch.testing.assert_close(logits(vanilla, **user_inputs()), logits(vanilla))


def test_a_missing_or_out_of_range_user_input_is_an_error():
    with pytest.raises(ValueError, match="'reclora' needs user_repr"):
        make_arm("reclora")(training_batch(), user_ids=torch.tensor([1, 2, 3]))
    no_lens = make_arm("reclora_no_lens")
    with pytest.raises(ValueError, match="'reclora_no_lens' needs user_ids"):
        no_lens(training_batch(), user_repr=user_inputs()["user_repr"])
    with pytest.raises(ValueError, match=r"user ids must be in \[0, 3\]"):
        no_lens(training_batch(), user_ids=torch.tensor([1, 2, 4]))


def test_an_unknown_arm_lists_the_accepted_ones():
    with pytest.raises(ParameterError, match=r"unknown arm 'lora'; accepted arms: \['reclora', "):
        make_arm("lora")


def test_no_lens_needs_users():
    with pytest.raises(ParameterError, match="needs n_users >= 1"):
        build_arm("reclora_no_lens", tiny_llama(len(TOKENIZER)), CONFIG, n_users=0)


@pytest.mark.parametrize("arm", ["reclora", "vanilla_lora"])
def test_a_base_model_without_the_target_modules_is_a_user_error(arm):
    config = PersonalizedLoraConfig(target_modules=("c_attn",), user_dim=8)
    with pytest.raises(UserInputError) as error:
        build_arm(arm, tiny_llama(len(TOKENIZER)), config, n_users=N_USERS)
    message = str(error.value)
    assert "['c_attn']" in message and "q_proj" in message and "LlamaForCausalLM" in message


def test_the_arm_is_an_ordinary_module():
    arm_model = make_arm("reclora_no_lens")
    assert isinstance(arm_model, nn.Module)
    assert arm_model.user_input == "user_ids"
    assert any(name.startswith("user_embedding.") for name, _ in arm_model.named_parameters())
