"""Prompt templates: golden texts, decoding of MovieLens codes, truncation."""

from __future__ import annotations

import pytest
import yaml

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.item_text.prompts import (
    PromptTemplate,
    answers,
    decode_profile,
    render_prompts,
    user_text,
)
from reclora_pipeline.workspace import project_root
from tests.tiny_models import word_tokenizer


@pytest.fixture(scope="module")
def movies() -> PromptTemplate:
    params = yaml.safe_load((project_root() / "conf/base/parameters_item_text.yml").read_text())[
        "item_text"
    ]
    return PromptTemplate.from_config("movies", params["templates"])


HISTORY = [("Toy Story (1995)", 4.0), ("Heat (1995)", 1.0)]


def test_golden_prompt_for_a_male_user(movies):
    text = user_text(movies, decode_profile("M", 25, "4", ml1m_codes=True), HISTORY, "Fargo (1996)")
    assert text == (
        "The user is a male. His job is college/grad student. His age is 25-34. "
        "He watched the following movies in order in the past, and rated them: "
        "['0. Toy Story (1995), 4 stars', '1. Heat (1995), 1 star']. "
        "Based on the movies he has watched, deduce if he will like the movie ***Fargo (1996)***. "
        "Note that more stars the user rated the movie, higher the user liked the movie. "
        "You should ONLY tell me yes or no."
    )


def test_golden_prompt_for_a_female_user(movies):
    text = user_text(
        movies, decode_profile("F", 24, "technician", ml1m_codes=False), HISTORY[:1], "Fargo (1996)"
    )
    assert text.startswith(
        "The user is a female. Her job is technician. Her age is 24. "
        "She watched the following movies in order in the past, and rated them: ['0. Toy Story (1995), 4 stars']. "
        "Based on the movies she has watched, deduce if she will like the movie ***Fargo (1996)***."
    )


def test_user_without_profile_gets_neutral_wording(movies):
    text = user_text(movies, None, HISTORY, "Fargo (1996)")
    assert text.startswith("The user watched the following movies") and "the user will like" in text


def test_truncation_drops_oldest_history_items_but_keeps_the_question(movies):
    tokenizer = word_tokenizer()
    history = [(f"Film{i} (2000)", 3.0) for i in range(10)]
    full, full_lengths, _ = render_prompts(
        movies, tokenizer, [None], [history], ["Target (2001)"], 10_000
    )
    budget = int(full_lengths[0]) - 8
    prompts, lengths, kept = render_prompts(
        movies, tokenizer, [None], [history], ["Target (2001)"], budget
    )
    assert lengths[0] <= budget and 0 < kept[0] < 10
    assert "Film0 " not in prompts[0] and "Film9 " in prompts[0]
    assert prompts[0].endswith(full[0][full[0].index("Based on") :])


def test_unknown_template_and_answers(movies):
    with pytest.raises(ParameterError, match="accepted values"):
        PromptTemplate.from_config("songs", {"movies": {}})
    assert answers([1, 0]) == ["Yes.", "No."]
