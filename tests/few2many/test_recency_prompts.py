"""Recency prompts: the item_text recipe rendered with the last K_text history items."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import yaml

from reclora_pipeline.few2many.recency import with_recency_prompts
from reclora_pipeline.item_text.prompt_table import PromptRecipe
from reclora_pipeline.item_text.prompts import PromptTemplate
from reclora_pipeline.workspace import project_root
from tests.tiny_models import word_tokenizer


def _recipe(tokenizer_folder) -> PromptRecipe:
    params = yaml.safe_load((project_root() / "conf/base/parameters_item_text.yml").read_text())
    template = PromptTemplate(**params["item_text"]["templates"]["movies"])
    word_tokenizer().save_pretrained(tokenizer_folder)
    recipe = PromptRecipe(template, 10_000, str(tokenizer_folder), ml1m_codes=True, k_text=2)
    # The recipe travels between stages as JSON.
    return PromptRecipe.from_dict(recipe.to_dict())


def test_recency_prompt_holds_the_last_k_text_items(tmp_path):
    rows = pa.table(
        {
            "subset": ["train", "test"], "sample_id": [7, 8], "user_id": [1, 2],
            "item_id": [40, 41], "label": [1, 0], "split": ["train", "test"],
            "history_item_ids": pa.array([[31, 32, 33, 40], [34]], pa.list_(pa.int32())),
            "history_ratings": pa.array([[1.0, 2.0, 3.0, 4.0], [5.0]], pa.list_(pa.float32())),
            "crm_probability": [0.25, 0.75],
        }
    )  # fmt: skip
    items = pd.DataFrame({"item_id": range(30, 42), "title": [f"Film{i}" for i in range(30, 42)]})
    users = pd.DataFrame(
        {"user_id": [1, 2], "gender": ["F", "M"], "age": [25, 35], "occupation": [4, 0]}
    )

    result = with_recency_prompts(rows, items, users, _recipe(tmp_path / "tokenizer"))

    assert result.column_names == [
        "subset", "sample_id", "user_id", "item_id", "label", "split", "crm_probability",
        "recency_prompt",
    ]  # fmt: skip
    first, second = result.column("recency_prompt").to_pylist()
    # The last two items that are not the target, oldest first.
    assert "Film32" in first and "Film33" in first and "Film31" not in first
    assert first.index("Film32") < first.index("Film33") and "***Film40***" in first
    assert "Film34" in second and "***Film41***" in second
    assert "college/grad student" in first and "deduce if" in second
