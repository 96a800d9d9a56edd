"""ReLLa-style Yes/No prompts: user profile, rated history, target item, in the model's chat format."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from reclora_pipeline.errors import ParameterError

# MovieLens-1M codes (README of ML-1M). ML-100K stores real ages and occupation names.
ML1M_AGES = {
    1: "under 18",
    18: "18-24",
    25: "25-34",
    35: "35-44",
    45: "45-49",
    50: "50-55",
    56: "56+",
}
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
ANSWERS = {1: "Yes.", 0: "No."}


@dataclass(frozen=True)
class PromptTemplate:
    """The pieces of one dataset family's prompt (``str.format`` fields in braces)."""

    profile: str
    history: str
    item: str
    question: str

    @classmethod
    def from_config(cls, name: str, templates: dict[str, dict[str, str]]) -> PromptTemplate:
        """The template called ``name`` from the ``item_text.templates`` parameter."""
        if name not in templates:
            raise ParameterError(
                f"unknown item_text.template {name!r}; accepted values: {sorted(templates)}"
            )
        fields = templates[name]
        missing = [key for key in ("profile", "history", "item", "question") if key not in fields]
        if missing:
            raise ParameterError(f"item_text.templates.{name} lacks {missing}")
        return cls(**{key: fields[key] for key in ("profile", "history", "item", "question")})


def pronouns(gender: object) -> dict[str, str]:
    """Subject/possessive pronouns in both cases, neutral when the gender is unknown."""
    if gender == "M":
        return {"gender": "male", "He": "He", "he": "he", "His": "His", "his": "his"}
    if gender == "F":
        return {"gender": "female", "He": "She", "he": "she", "His": "Her", "his": "her"}
    return {"gender": "person", "He": "The user", "he": "the user", "His": "Their", "his": "their"}


def decode_profile(
    gender: object, age: object, occupation: object, ml1m_codes: bool
) -> dict[str, str]:
    """Template fields of one user, MovieLens-1M codes decoded when ``ml1m_codes``."""
    fields = pronouns(gender)
    if age is None or (isinstance(age, float) and np.isnan(age)):
        fields["age"] = "unknown"
    else:
        fields["age"] = ML1M_AGES.get(int(age), str(int(age))) if ml1m_codes else str(int(age))
    if isinstance(occupation, str) and occupation.isdigit() and ml1m_codes:
        code = int(occupation)
        fields["occupation"] = (
            ML1M_OCCUPATIONS[code] if code < len(ML1M_OCCUPATIONS) else occupation
        )
    else:
        fields["occupation"] = (
            occupation if isinstance(occupation, str) and occupation else "unknown"
        )
    return fields


def stars(rating: float) -> str:
    """``4 stars``, ``3.5 stars``, ``1 star``."""
    return f"{rating:g} star" + ("" if rating == 1 else "s")


def user_text(
    template: PromptTemplate,
    profile: dict[str, str] | None,
    history: Sequence[tuple[str, float]],
    target_title: str,
) -> str:
    """The user turn: profile (when known), rated history (oldest first), the question."""
    fields = dict(profile) if profile else pronouns(None)
    items = [
        f"{i}. {template.item.format(title=title)}, {stars(rating)}"
        for i, (title, rating) in enumerate(history)
    ]
    text = template.profile.format(**fields) if profile else ""
    text += template.history.format(history=repr(items), **fields)
    return text + template.question.format(
        target=template.item.format(title=target_title), **fields
    )


def chat_prompt(tokenizer: PreTrainedTokenizerBase, text: str) -> str:
    """``text`` as a user turn in the model's chat template, ready for the answer."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    return f"{text}\nAnswer: "


def render_prompts(
    template: PromptTemplate,
    tokenizer: PreTrainedTokenizerBase,
    profiles: Sequence[dict[str, str] | None],
    histories: Sequence[Sequence[tuple[str, float]]],
    targets: Sequence[str],
    max_prompt_tokens: int,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Chat prompts, their token counts and how many history items each kept.

    A prompt over ``max_prompt_tokens`` loses its oldest history items, one at a
    time, until it fits; the profile, the question and the target always stay.
    """
    kept = np.array([len(history) for history in histories], dtype=np.int64)

    def render(rows: np.ndarray) -> tuple[list[str], np.ndarray]:
        texts = [
            chat_prompt(
                tokenizer,
                user_text(
                    template, profiles[i], histories[i][len(histories[i]) - kept[i] :], targets[i]
                ),
            )
            for i in rows
        ]
        lengths = np.array(
            [len(ids) for ids in tokenizer(texts, add_special_tokens=False).input_ids],
            dtype=np.int64,
        )
        return texts, lengths

    all_rows = np.arange(len(targets))
    prompts, lengths = render(all_rows)
    over = all_rows[(lengths > max_prompt_tokens) & (kept > 0)]
    while len(over):
        kept[over] -= 1
        texts, new_lengths = render(over)
        for row, text, length in zip(over, texts, new_lengths, strict=True):
            prompts[row], lengths[row] = text, length
        over = over[(new_lengths > max_prompt_tokens) & (kept[over] > 0)]
    return prompts, lengths, kept


def answers(labels: Sequence[Any]) -> list[str]:
    """The target completion of each sample: "Yes." for a like, "No." otherwise."""
    return [ANSWERS[int(label)] for label in labels]
