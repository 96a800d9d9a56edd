"""Item embeddings: shapes, padding-independence, PCA."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.item_text.descriptions import describe_items
from reclora_pipeline.item_text.embeddings import (
    check_pca_dim,
    llm_encoder,
    mean_pooled_embeddings,
    pca_reduce,
)
from tests.tiny_models import tiny_llama, word_tokenizer

TEXTS = ["the movie", "a male user liked the movie stars", "no", "the user watched movies"]


def test_llm_embeddings_have_one_row_per_text_and_ignore_padding():
    tokenizer = word_tokenizer()
    encoder = llm_encoder(tiny_llama(vocab_size=len(tokenizer)))
    together = mean_pooled_embeddings(encoder, tokenizer, TEXTS, batch_size=4)
    alone = np.stack(
        [mean_pooled_embeddings(encoder, tokenizer, [text], batch_size=1)[0] for text in TEXTS]
    )
    assert together.shape == (4, 32) and together.dtype == np.float32
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_pca_reduces_to_the_requested_dimension_and_caps_at_the_items():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(50, 16)).astype(np.float32)
    assert pca_reduce(raw, 8).shape == (50, 8)
    assert pca_reduce(raw[:5], 8).shape == (5, 5)  # only 5 items: at most 5 components
    assert pca_reduce(raw, None).shape == (50, 16)
    # Components are ordered by explained variance.
    variances = pca_reduce(raw, 8).var(axis=0)
    assert (np.diff(variances) <= 1e-6).all()


def test_pca_dimension_beyond_the_embedding_is_a_parameter_error():
    with pytest.raises(ParameterError, match=r"item_text.pca_dim is 600.*1..576"):
        check_pca_dim(600, 576)


def test_descriptions_of_movies_and_books():
    items = pd.DataFrame(
        {"item_id": [1, 2], "title": ["Heat", "Dune"], "year": [1995, None],
         "genres": [["Action", "Crime"], []], "authors": [[], ["Frank Herbert"]]}
    )  # fmt: skip
    described = describe_items(items)
    assert described.title.tolist() == ["Heat (1995)", "Dune"]
    assert described.description.tolist() == [
        "Heat (1995); genres: Action, Crime",
        "Dune, by Frank Herbert",
    ]
