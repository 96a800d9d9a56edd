"""item_text.prompt_template: parsing, chat templates, format strings and the BOS token."""

from __future__ import annotations

import string

import pytest
import yaml
from transformers import LlamaTokenizer, PreTrainedTokenizerBase

from reclora_pipeline.errors import ParameterError, SettingError
from reclora_pipeline.finetune.tokenization import encode_prompts
from reclora_pipeline.item_text.model_template import (
    BUILTIN_FORMATS,
    ModelTemplate,
    parse_model_template,
    resolve_template,
)
from reclora_pipeline.item_text.preparation import prepare_language_model, prompt_recipe
from reclora_pipeline.item_text.prompt_table import PromptRecipe
from reclora_pipeline.item_text.prompts import PromptTemplate, chat_prompt, render_prompts
from reclora_pipeline.item_text.settings import ItemTextSettings
from reclora_pipeline.typed_settings import parse
from reclora_pipeline.workspace import project_root
from tests.tiny_models import save_tiny_llama, word_tokenizer

VICUNA = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant "
    "gives helpful, detailed, and polite answers to the user's questions. USER: {text} ASSISTANT:"
)
# A minimal chat template (no BOS in it) of the kind SmolLM2-Instruct ships.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|user|> {{ m['content'] }}{% endfor %}"
    "{% if add_generation_prompt %} <|assistant|>{% endif %}"
)
TEXT = "the user watched a movie"


def with_chat_template(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def metaspace_llama() -> LlamaTokenizer:
    """A Llama tokenizer as transformers 5 builds Vicuna's (legacy=False: the word-start
    marker goes only on the very first piece, not after a special token), adding BOS."""
    letters = string.ascii_letters + string.digits + ".,:'?*[]-"
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3}
    for char in letters:
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(f"▁{char}", len(vocab))
    merges = [("▁", char) for char in letters]
    return LlamaTokenizer(vocab=vocab, merges=merges, legacy=False, add_bos_token=True)


@pytest.fixture(scope="module")
def movies() -> PromptTemplate:
    params = yaml.safe_load((project_root() / "conf/base/parameters_item_text.yml").read_text())
    return PromptTemplate.from_config("movies", params["item_text"]["templates"])


# --- parsing -------------------------------------------------------------------------


def test_names_parse_to_templates_and_vicuna_is_fastchats_format():
    assert parse_model_template("auto", "k") == ModelTemplate("auto")
    assert parse_model_template("chat", "k") == ModelTemplate("chat")
    assert parse_model_template("plain", "k").format == "{text}\nAnswer: "
    assert BUILTIN_FORMATS["vicuna_v1.1"] == VICUNA
    custom = parse_model_template({"name": "alpaca", "format": "### Q:\n{text}\n### A:"}, "k")
    assert custom == ModelTemplate("alpaca", "### Q:\n{text}\n### A:")
    assert parse_model_template({"format": "{{x}} {text}"}, "k").name == "custom"


def test_settings_parse_the_template_once_and_default_to_auto():
    assert ItemTextSettings().prompt_template == ModelTemplate("auto")
    settings = parse(ItemTextSettings, {"prompt_template": "vicuna_v1.1"}, "item_text")
    assert settings.prompt_template == ModelTemplate("vicuna_v1.1", VICUNA)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("vicuna", r"item_text\.prompt_template='vicuna'.*auto, chat, plain, vicuna_v1\.1"),
        (3, r"item_text\.prompt_template=3"),
        ({"format": "no field"}, r"prompt_template\.format=.*one \{text\} field"),
        ({"format": "{text} {user}"}, r"fields \['text', 'user'\]"),
        ({"format": "{text", "name": "x"}, r"prompt_template\.format="),
        ({"format": "{text}", "bos": True}, r"unknown keys \['bos'\]"),
        ({"format": "{text}", "name": "plain"}, r"prompt_template\.name='plain'"),
    ],
)
def test_bad_templates_name_the_setting_and_the_choices(value, message):
    with pytest.raises(SettingError, match=message):
        parse(ItemTextSettings, {"prompt_template": value}, "item_text")


# --- resolving against a tokenizer ---------------------------------------------------


def test_auto_uses_the_chat_template_and_adds_no_bos_of_its_own():
    for tokenizer in (
        with_chat_template(word_tokenizer()),
        with_chat_template(word_tokenizer(bos=True)),
    ):
        wrapper = resolve_template(ModelTemplate("auto"), tokenizer)
        assert (wrapper.name, wrapper.prefix) == ("chat", "")
        assert wrapper.render(TEXT) == "<|user|> the user watched a movie <|assistant|>"
        assert chat_prompt(tokenizer, TEXT) == wrapper.render(TEXT)


def test_auto_without_chat_template_is_plain_as_before():
    wrapper = resolve_template(ModelTemplate("auto"), word_tokenizer())
    assert wrapper.describe() == {"name": "plain", "format": "{text}\nAnswer: ", "bos_prefix": None}
    assert wrapper.render(TEXT) == f"{TEXT}\nAnswer: "


def test_chat_without_a_chat_template_names_the_setting_and_the_model(tmp_path):
    tokenizer = word_tokenizer()
    tokenizer.save_pretrained(tmp_path / "model-x")
    from transformers import AutoTokenizer

    with pytest.raises(
        ParameterError, match=r"item_text\.prompt_template=chat .*model-x.* has none"
    ):
        resolve_template(ModelTemplate("chat"), AutoTokenizer.from_pretrained(tmp_path / "model-x"))


def test_a_bos_adding_tokenizer_gets_bos_text_parsed_as_the_bos_token():
    tokenizer = word_tokenizer(bos=True)
    vicuna = parse_model_template("vicuna_v1.1", "k")
    prompt = resolve_template(vicuna, tokenizer).render(TEXT)
    assert prompt == "<s>" + VICUNA.format(text=TEXT)
    ids = tokenizer(prompt, add_special_tokens=False).input_ids
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    # The same tokens the tokenizer gives when it adds BOS itself.
    assert ids == tokenizer(VICUNA.format(text=TEXT), add_special_tokens=True).input_ids


def test_no_bos_for_a_tokenizer_that_adds_none():
    prompt = resolve_template(parse_model_template("vicuna_v1.1", "k"), word_tokenizer()).render(
        TEXT
    )
    assert prompt == VICUNA.format(text=TEXT)


def test_llama_metaspace_tokenizer_keeps_the_first_words_token_after_bos():
    tokenizer = metaspace_llama()
    plain = VICUNA.format(text="Will he like Heat?")
    own = tokenizer(plain, add_special_tokens=True).input_ids
    assert own[0] == tokenizer.bos_token_id
    # "<s>A chat" would lose the word-start marker of "A" with this tokenizer.
    assert tokenizer("<s>" + plain, add_special_tokens=False).input_ids != own
    wrapper = resolve_template(parse_model_template("vicuna_v1.1", "k"), tokenizer)
    assert wrapper.prefix == "<s> "
    assert (
        tokenizer(wrapper.render("Will he like Heat?"), add_special_tokens=False).input_ids == own
    )


def test_bos_text_that_is_not_parsed_as_the_token_is_an_error():
    tokenizer = word_tokenizer(bos=True)
    tokenizer.split_special_tokens = True  # "<s>" in text is then plain characters
    with pytest.raises(
        ParameterError, match=r"adds its BOS token '<s>'.*item_text\.prompt_template"
    ):
        resolve_template(parse_model_template("plain", "k"), tokenizer)


# --- item_text counts agree with finetune's encoding ---------------------------------


@pytest.mark.parametrize("chat", [True, False], ids=["chat-template", "no-template-bos"])
def test_item_text_counts_equal_the_finetune_encoding(movies, chat):
    tokenizer = with_chat_template(word_tokenizer(bos=True)) if chat else word_tokenizer(bos=True)
    model_template = ModelTemplate("auto") if chat else parse_model_template("vicuna_v1.1", "k")
    histories = [[("Heat (1995)", 4.0), ("Fargo (1996)", 2.0)], [], [("Heat (1995)", 5.0)]]
    rendered, lengths, _ = render_prompts(
        movies, tokenizer, [None] * 3, histories, ["Toy Story (1995)"] * 3, 10_000, model_template
    )
    encoded = encode_prompts(tokenizer, rendered)
    assert lengths.tolist() == [len(ids) for ids in encoded]
    first = {ids[0] for ids in encoded}
    assert (first == {tokenizer.bos_token_id}) is (not chat)


# --- what the stage records ----------------------------------------------------------


def test_language_model_record_and_recipe_carry_the_template_used(tmp_path):
    folder = save_tiny_llama(tmp_path / "tiny")
    params = yaml.safe_load((project_root() / "conf/base/parameters_item_text.yml").read_text())
    settings = parse(
        ItemTextSettings,
        {
            **params["item_text"],
            "model": str(folder),
            "pca_dim": 4,
            "prompt_template": "vicuna_v1.1",
        },
        "item_text",
    )
    info = prepare_language_model(settings)
    assert info["prompt_template"] == {
        "setting": "vicuna_v1.1", "name": "vicuna_v1.1", "format": VICUNA, "bos_prefix": None,
    }  # fmt: skip
    source = {"family": "movies", "format": "ml-1m", "ml1m_codes": True}
    recipe = PromptRecipe.from_dict(prompt_recipe(settings, info, source).to_dict())
    assert recipe.prompt_template == ModelTemplate("vicuna_v1.1", VICUNA)
    # A recipe written before prompt templates existed renders as before (auto).
    old = {k: v for k, v in recipe.to_dict().items() if k != "prompt_template"}
    assert PromptRecipe.from_dict(old).prompt_template == ModelTemplate("auto")
