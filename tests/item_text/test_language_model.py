"""The language model: validation of item_text.model and the GGUF conversion."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.item_text import language_model
from reclora_pipeline.item_text.embeddings import check_pca_dim
from reclora_pipeline.item_text.language_model import check_causal_lm, convert_embedded_gguf
from reclora_pipeline.item_text.preparation import embedding_width
from reclora_pipeline.item_text.settings import ItemTextSettings
from reclora_pipeline.typed_settings import parse
from tests.tiny_models import save_tiny_llama


def test_missing_model_folder_is_a_parameter_error(tmp_path):
    with pytest.raises(ParameterError, match=r"item_text.model: model folder .* does not exist"):
        check_causal_lm(str(tmp_path / "no-such-model"))


def test_a_model_that_is_not_a_causal_lm_is_rejected(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "bert", "architectures": ["BertModel"]})
    )
    with pytest.raises(ParameterError, match="is not a causal language model"):
        check_causal_lm(str(tmp_path))


def test_a_local_causal_lm_passes(tmp_path):
    assert check_causal_lm(str(save_tiny_llama(tmp_path / "tiny"))).model_type == "llama"


def _keeping_gguf_loads(real: type, kept: dict) -> type:
    """``real`` (an Auto class) whose ``from_pretrained`` keeps what it read from a GGUF."""

    class Keeping:
        @staticmethod
        def from_pretrained(*args, **kwargs):
            loaded = real.from_pretrained(*args, **kwargs)
            if kwargs.get("gguf_file"):
                kept[real.__name__] = loaded
            return loaded

        from_config = staticmethod(getattr(real, "from_config", None))

    return Keeping


@pytest.mark.slow
def test_converted_model_gives_the_gguf_logits(tmp_path, monkeypatch):
    # Reading the GGUF is the slow part: the comparison uses what the conversion read.
    kept: dict = {}
    for name, real in (("AutoModelForCausalLM", AutoModelForCausalLM),
                       ("AutoTokenizer", AutoTokenizer)):  # fmt: skip
        monkeypatch.setattr(language_model, name, _keeping_gguf_loads(real, kept))
    folder = convert_embedded_gguf(tmp_path / "smollm2")
    assert json.loads((folder / language_model.CONVERTED_MARKER).read_text())["model"] == "embedded"
    assert not (tmp_path / "smollm2.partial").exists()
    original_model, original_tokenizer = kept["AutoModelForCausalLM"], kept["AutoTokenizer"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Will the user like the movie Heat (1995)? Answer yes or no."}],
        tokenize=False, add_generation_prompt=True,
    )  # fmt: skip
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        converted = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)(
            **inputs
        ).logits
        original = original_model(**inputs).logits
    torch.testing.assert_close(converted, original, rtol=0, atol=1e-5)
    yes_no = ["Yes", "No"]
    assert tokenizer.convert_tokens_to_ids(yes_no) == original_tokenizer.convert_tokens_to_ids(
        yes_no
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"embedder": "word2vec"},
            r"item_text.embedder='word2vec' is not allowed: expected one of 'llm', 'sentence'",
        ),
        ({"template": "songs"}, r"item_text.template='songs' is not allowed"),
        ({"text_retrieval": "random"}, r"item_text.text_retrieval='random'"),
        ({"similarity": "l2"}, r"item_text.similarity='l2'"),
        ({"k_text": 0}, r"item_text.k_text=0 is not allowed: expected an integer >= 1"),
        ({"templates": {"movies": {"profile": ""}}}, r"item_text.templates.movies"),
    ],
)
def test_bad_parameters_are_refused_by_the_parser(change, message):
    from tests.pipelines.catalog import project_parameters

    params = {**project_parameters()["item_text"], **change}
    with pytest.raises(ParameterError, match=message):
        parse(ItemTextSettings, params, "item_text")


@pytest.mark.parametrize(
    ("change", "width", "message"),
    [
        ({"pca_dim": 1000}, 576, r"item_text.pca_dim is 1000"),
        ({"embedder": "sentence", "pca_dim": 512}, 576, r"item_text.pca_dim is 512.*384"),
    ],
)
def test_a_pca_dim_wider_than_the_embeddings_is_refused(change, width, message):
    from tests.pipelines.catalog import project_parameters

    settings = parse(ItemTextSettings, {**project_parameters()["item_text"], **change}, "item_text")
    with pytest.raises(ParameterError, match=message):
        check_pca_dim(settings.pca_dim, embedding_width(settings, width))
