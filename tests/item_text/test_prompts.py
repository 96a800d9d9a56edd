"""Prompt templates: golden texts, decoding of MovieLens codes, truncation, missing profiles."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.item_text.descriptions import describe_items
from reclora_pipeline.item_text.prompt_table import prompt_table, user_profiles
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


# Every way a DataFrame cell can say "no value" under pandas 3.
MISSING = [None, np.nan, pd.NA]


@pytest.mark.parametrize("missing", MISSING, ids=["None", "NaN", "NA"])
def test_missing_profile_fields_read_unknown(missing):
    assert decode_profile(missing, missing, missing, ml1m_codes=True) == {
        "gender": "person", "He": "The user", "he": "the user", "His": "Their", "his": "their",
        "age": "unknown", "occupation": "unknown",
    }  # fmt: skip
    partial = decode_profile("F", missing, "4", ml1m_codes=True)
    assert (partial["gender"], partial["age"], partial["occupation"]) == (
        "female",
        "unknown",
        "college/grad student",
    )


def _users_from_duckdb() -> pd.DataFrame:
    """Users as ingest stores them, handed to pandas 3 by DuckDB (pd.NA ages, NaN strings)."""
    return duckdb.sql(
        "SELECT user_id::BIGINT AS user_id, gender::VARCHAR AS gender, age::INTEGER AS age, "
        "occupation::VARCHAR AS occupation FROM (VALUES (1, NULL, NULL, NULL), "
        "(2, 'F', NULL, NULL), (3, 'M', 25, '4')) AS users(user_id, gender, age, occupation)"
    ).df()


@pytest.mark.parametrize("missing", MISSING, ids=["None", "NaN", "NA"])
def test_profile_less_users_render_neutral_prompts(movies, missing):
    from_duckdb = _users_from_duckdb()
    assert from_duckdb.age.isna().sum() == 2  # the frame really holds missing values
    by_hand = pd.DataFrame(
        {"user_id": [4], "gender": [missing], "age": [missing], "occupation": [missing]},
        dtype=object,
    )
    profiles = user_profiles(pd.concat([from_duckdb, by_hand]), ml1m_codes=True)
    assert profiles[1] is None and profiles[4] is None
    assert (profiles[2]["gender"], profiles[2]["age"], profiles[2]["occupation"]) == (
        "female",
        "unknown",
        "unknown",
    )
    assert profiles[3]["occupation"] == "college/grad student"

    rows = pd.DataFrame(
        {"sample_id": [10, 11, 12, 13], "user_id": [1, 2, 3, 4], "item_id": [7, 7, 7, 7],
         "label": [1, 0, 1, 0], "split": ["test"] * 4, "ids": [[5]] * 4, "ratings": [[4.0]] * 4}
    )  # fmt: skip
    titles = {5: "Heat (1995)", 7: "Fargo (1996)"}
    table = prompt_table(
        rows, ("ids", "ratings"), titles, profiles, movies, word_tokenizer(), 10_000
    ).to_pydict()
    prompts = dict(zip(table["user_id"], table["prompt"], strict=True))
    for user in (1, 4):
        assert "The user watched" in prompts[user] and "job is" not in prompts[user]
    assert "Her job is unknown. Her age is unknown." in prompts[2]
    assert "His job is college/grad student. His age is 25-34." in prompts[3]
    assert table["answer"] == ["Yes.", "No.", "Yes.", "No."]


def test_items_with_missing_year_title_and_lists_are_described():
    items = duckdb.sql(
        "SELECT * FROM (VALUES (1, 'Heat', 1995, ['Action'], []::VARCHAR[]), "
        "(2, NULL, NULL, NULL, NULL)) AS items(item_id, title, year, genres, authors)"
    ).df()
    described = describe_items(items)
    assert described.title.tolist() == ["Heat (1995)", "Unknown title"]
    assert described.description.tolist() == ["Heat (1995); genres: Action", "Unknown title"]
