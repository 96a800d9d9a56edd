"""The recipes predict rebuilds rows from: what item_text and ctr_lens recorded."""

from __future__ import annotations

import pandas as pd
import pytest

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.item_text.prompt_table import PromptRecipe
from reclora_pipeline.item_text.retrieval import RetrievalRecipe
from reclora_pipeline.predict.rows import Lens, TextRecipe


def test_item_text_records_its_retrieval_and_the_recipe_round_trips(upstream, tmp_path, database):
    catalog = upstream.catalog(tmp_path)
    recorded = catalog.load("prompt_recipe")
    settings = upstream.parameters["item_text"]
    assert recorded["retrieval"] == {
        key: settings[key] for key in ("similarity", "k_text", "text_retrieval")
    }
    recipe = PromptRecipe.from_dict(recorded)
    assert recipe.retrieval == RetrievalRecipe.from_dict(recorded["retrieval"])
    assert PromptRecipe.from_dict(recipe.to_dict()) == recipe
    text = TextRecipe.of(pd.DataFrame(), pd.DataFrame(), recorded)
    assert (text.retrieval.k_text, text.retrieval.text_retrieval) == (
        settings["k_text"],
        settings["text_retrieval"],
    )
    # A recipe an older run wrote, with the CRM side item_text no longer retrieves, still reads.
    retired = recorded["retrieval"] | {"k_crm": 60, "crm_retrieval": "recency"}
    assert RetrievalRecipe.from_dict(retired) == recipe.retrieval

    older = {key: value for key, value in recorded.items() if key != "retrieval"}
    assert PromptRecipe.from_dict(older).retrieval is None
    with pytest.raises(UserInputError, match=r"kedro run --nodes item_text\.write_prompt_recipe"):
        TextRecipe.of(pd.DataFrame(), pd.DataFrame(), older)


def test_the_lens_is_the_crm_the_lens_recipe_names(upstream, tmp_path, database):
    catalog = upstream.catalog(tmp_path)
    recipe, vocabulary = catalog.load("lens_recipe"), catalog.load("ctr_vocabulary")
    state = catalog.load("ctr_checkpoint_din")
    lens = Lens.of(recipe, vocabulary, {"din": state, "sim": {}})
    assert lens.settings.crm == "din" and lens.state is state
    with pytest.raises(UserInputError, match=r"lens CRM 'din' .* no checkpoint among \['sim'\]"):
        Lens.of(recipe, vocabulary, {"sim": {}})
