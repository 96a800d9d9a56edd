"""The language model item_text works with, and the recipe its prompts are written by."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, AutoTokenizer

from reclora_pipeline.errors import SettingError
from reclora_pipeline.item_text import language_model
from reclora_pipeline.item_text.embedded_models import embedded_model
from reclora_pipeline.item_text.embeddings import check_pca_dim, sentence_encoder_folder
from reclora_pipeline.item_text.history_table import retrieval_recipe
from reclora_pipeline.item_text.model_template import ModelTemplate, resolve_template
from reclora_pipeline.item_text.prompt_table import PromptRecipe
from reclora_pipeline.item_text.prompts import PromptTemplate
from reclora_pipeline.item_text.settings import ItemTextSettings


def embedding_width(settings: ItemTextSettings, llm_hidden_size: int) -> int:
    """Width of the raw item embeddings: the LLM's hidden size, or the sentence encoder's."""
    if settings.embedder == "llm":
        return llm_hidden_size
    return int(AutoConfig.from_pretrained(sentence_encoder_folder()).hidden_size)


def prepare_language_model(settings: ItemTextSettings) -> dict[str, Any]:
    """Resolve ``item_text.model`` (an embedded GGUF is converted once), check that
    ``item_text.pca_dim`` fits the embeddings and that ``item_text.prompt_template`` suits
    the tokenizer; the ``language_model`` record, with the prompt template used."""
    embedded = embedded_model(settings.model)
    if embedded is not None:
        # Known without converting first, so a bad pca_dim fails before the conversion.
        check_pca_dim(settings.pca_dim, embedding_width(settings, embedded.hidden_size))
    path = language_model.resolve_model(settings.model, settings.converted_model_folder)
    config = language_model.check_causal_lm(path)
    check_pca_dim(settings.pca_dim, embedding_width(settings, int(config.hidden_size)))
    # Resolved here, before any embedding, so a template the model cannot take fails early.
    wrapper = resolve_template(settings.prompt_template, AutoTokenizer.from_pretrained(path))
    return {
        "model": settings.model,
        "name_or_path": path,
        "model_type": config.model_type,
        "hidden_size": config.hidden_size,
        "prompt_template": {"setting": settings.prompt_template.name, **wrapper.describe()},
    }


def prompt_recipe(
    settings: ItemTextSettings, language_model_info: dict[str, Any], source: dict[str, Any]
) -> PromptRecipe:
    """The template of the source's family (or ``item_text.template``), the model's
    tokenizer, its prompt template (as resolved for it) and the token budget."""
    name = settings.template_for(source["family"])
    if name not in settings.templates:
        raise SettingError(
            "item_text.templates", sorted(settings.templates), f"a template named {name!r}",
            f"the {source['format']} data is of the {source['family']!r} family",
        )  # fmt: skip
    # A record from before prompt templates existed holds none: the setting then.
    recorded = language_model_info.get("prompt_template")
    return PromptRecipe(
        template=PromptTemplate.from_config(name, settings.templates),
        max_prompt_tokens=settings.max_prompt_tokens,
        tokenizer=language_model_info["name_or_path"],
        ml1m_codes=bool(source["ml1m_codes"]),
        k_text=settings.k_text,
        prompt_template=ModelTemplate.from_dict(recorded) if recorded else settings.prompt_template,
        retrieval=retrieval_recipe(settings),
    )
