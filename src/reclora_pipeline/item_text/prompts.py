"""ReLLa-style Yes/No prompts: user profile, rated history, target item, in the model's prompt template."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.item_text.model_template import ModelTemplate, resolve_template
from reclora_pipeline.missing import is_missing, text_or_none

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


TEMPLATE_FIELDS = ("profile", "history", "item", "question")


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
        missing = missing_fields(fields)
        if missing:
            raise ParameterError(f"item_text.templates.{name} lacks {missing}")
        return cls(**{key: fields[key] for key in TEMPLATE_FIELDS})


def missing_fields(template: dict[str, str]) -> list[str]:
    """The pieces of ``TEMPLATE_FIELDS`` a template's configuration lacks."""
    return [key for key in TEMPLATE_FIELDS if key not in template]


def pronouns(gender: object) -> dict[str, str]:
    """Subject/possessive pronouns in both cases, neutral when the gender is unknown."""
    # Compared as text: ``pd.NA == "M"`` is NA, whose truth value raises.
    code = text_or_none(gender)
    if code == "M":
        return {"gender": "male", "He": "He", "he": "he", "His": "His", "his": "his"}
    if code == "F":
        return {"gender": "female", "He": "She", "he": "she", "His": "Her", "his": "her"}
    return {"gender": "person", "He": "The user", "he": "the user", "His": "Their", "his": "their"}


def decode_profile(
    gender: object, age: object, occupation: object, ml1m_codes: bool
) -> dict[str, str]:
    """Template fields of one user, MovieLens-1M codes decoded when ``ml1m_codes``.

    Any field may be missing (None, NaN or ``pd.NA``); it then reads "unknown".
    """
    fields = pronouns(gender)
    fields["age"] = age_text(age, ml1m_codes)
    fields["occupation"] = occupation_text(occupation, ml1m_codes)
    return fields


def age_text(age: object, ml1m_codes: bool) -> str:
    """Age in years, its MovieLens-1M group when ``ml1m_codes``, or "unknown"."""
    if is_missing(age):
        return "unknown"
    years = int(age)
    return ML1M_AGES.get(years, str(years)) if ml1m_codes else str(years)


def occupation_text(occupation: object, ml1m_codes: bool) -> str:
    """Occupation name, MovieLens-1M code decoded when ``ml1m_codes``, or "unknown"."""
    text = text_or_none(occupation)
    if text is None:
        return "unknown"
    if ml1m_codes and text.isdigit():
        code = int(text)
        return ML1M_OCCUPATIONS[code] if code < len(ML1M_OCCUPATIONS) else text
    return text


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


def chat_prompt(
    tokenizer: PreTrainedTokenizerBase, text: str, model_template: ModelTemplate | None = None
) -> str:
    """``text`` as a user turn in the model's prompt template (``auto`` by default: its chat
    template, else ``plain``), ready for the answer. Resolves the template on every call:
    render many prompts with :func:`render_prompts` or one
    :func:`~reclora_pipeline.item_text.model_template.resolve_template`."""
    return resolve_template(model_template or ModelTemplate(), tokenizer).render(text)


def render_prompts(
    template: PromptTemplate,
    tokenizer: PreTrainedTokenizerBase,
    profiles: Sequence[dict[str, str] | None],
    histories: Sequence[Sequence[tuple[str, float]]],
    targets: Sequence[str],
    max_prompt_tokens: int,
    model_template: ModelTemplate | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Prompts in ``model_template`` (default ``auto``), their token counts and how many
    history items each kept.

    A prompt over ``max_prompt_tokens`` loses its oldest history items, one at a
    time, until it fits; the profile, the question and the target always stay. Counts
    are of the rendered strings encoded with ``add_special_tokens=False``, as finetune
    encodes them (``finetune.tokenization.encode_prompts``).
    """
    wrapper = resolve_template(model_template or ModelTemplate(), tokenizer)
    kept = np.array([len(history) for history in histories], dtype=np.int64)

    def render(rows: np.ndarray) -> tuple[list[str], np.ndarray]:
        texts = [
            wrapper.render(
                user_text(
                    template, profiles[i], histories[i][len(histories[i]) - kept[i] :], targets[i]
                )
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
