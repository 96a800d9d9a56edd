"""How a user turn becomes the model's input (``item_text.prompt_template``).

A model with a chat template gets its user turn rendered by that template, which places
its own special tokens. A model without one (Vicuna, base models) gets a format string
around the text, and the BOS token's text in front exactly when its tokenizer would add
BOS itself: every stage encodes prompts with ``add_special_tokens=False``, so the BOS
must be in the string for the model to see the sequence it was trained on.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from transformers import PreTrainedTokenizerBase

from reclora_pipeline.errors import ParameterError, SettingError

AUTO, CHAT, PLAIN, CUSTOM = "auto", "chat", "plain", "custom"
SETTING_KEY = "item_text.prompt_template"

# Format strings of the built-in templates; each holds one ``{text}`` field.
BUILTIN_FORMATS: dict[str, str] = {
    PLAIN: "{text}\nAnswer: ",
    # FastChat's "vicuna_v1.1" conversation (lm-sys/FastChat, fastchat/conversation.py,
    # register_conv_template(name="vicuna_v1.1"): SeparatorStyle.ADD_COLON_TWO, sep=" ",
    # roles USER/ASSISTANT) renders one user turn awaiting the answer as
    # system + " " + "USER: " + text + " " + "ASSISTANT:". Vicuna v1.3 and v1.5 use the same
    # template (FastChat docs/vicuna_weights_version.md; the v1.5 model card points there).
    "vicuna_v1.1": (
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions. "
        "USER: {text} ASSISTANT:"
    ),
}
CHOICES = (AUTO, CHAT, *BUILTIN_FORMATS)
# Text of a typical user turn, rendered to find out how the tokenizer treats BOS before it.
PROBE_TEXT = "The user watched the following movies"


@dataclass(frozen=True)
class ModelTemplate:
    """``auto``, ``chat`` (the tokenizer's chat template), or a format string with ``{text}``."""

    name: str = AUTO
    # None for auto and chat; otherwise a str.format string whose only field is {text}.
    format: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "format": self.format}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ModelTemplate:
        """The template :meth:`to_dict` wrote; ``auto`` for records written before it existed."""
        return cls(data["name"], data.get("format")) if data else cls()


def parse_model_template(value: Any, key: str) -> ModelTemplate:
    """``item_text.prompt_template``: a name of :data:`CHOICES`, or ``{format: "...{text}..."}``
    (optionally with a ``name`` that reports show)."""
    if isinstance(value, ModelTemplate):
        return value
    expected = f"one of {', '.join(CHOICES)}, or a mapping {{format: '...{{text}}...'}}"
    if isinstance(value, str):
        if value in (AUTO, CHAT):
            return ModelTemplate(value)
        if value in BUILTIN_FORMATS:
            return ModelTemplate(value, BUILTIN_FORMATS[value])
        raise SettingError(key, value, expected)
    if not isinstance(value, Mapping):
        raise SettingError(key, value, expected)
    unknown = sorted(set(value) - {"name", "format"})
    if unknown or not isinstance(value.get("format"), str):
        raise SettingError(key, dict(value), expected, f"unknown keys {unknown}" if unknown else "")
    name = value.get("name", CUSTOM)
    if not isinstance(name, str) or name in CHOICES:
        raise SettingError(f"{key}.name", name, f"a string other than {', '.join(CHOICES)}")
    return ModelTemplate(name, check_format(value["format"], f"{key}.format"))


def check_format(text: str, key: str) -> str:
    """``text`` when its only ``str.format`` field is ``{text}``, present once."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as error:
        raise SettingError(key, text, "a format string with one {text} field", str(error)) from None
    if fields != ["text"]:
        raise SettingError(
            key, text, "a format string with one {text} field",
            f"it has the fields {fields}; write literal braces as {{{{ and }}}}",
        )  # fmt: skip
    return text


@dataclass(frozen=True)
class PromptWrapper:
    """A :class:`ModelTemplate` resolved for one tokenizer: :meth:`render` makes prompts."""

    # "chat", or the name of the format string used (plain, vicuna_v1.1, custom, ...).
    name: str
    # None = the tokenizer's chat template.
    format: str | None
    # Put in front of every formatted prompt: the BOS text (plus a space where the
    # tokenizer needs one to keep the first word's token) or "".
    prefix: str
    tokenizer: PreTrainedTokenizerBase = field(repr=False, compare=False)

    def render(self, text: str) -> str:
        """``text`` as the user turn, ready for the answer."""
        if self.format is None:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
        return self.prefix + self.format.format(text=text)

    def describe(self) -> dict[str, Any]:
        """What reports show: the template used, its format string and the BOS text put in."""
        return {
            "name": self.name,
            "format": self.format,
            "bos_prefix": self.prefix or None,
        }


def resolve_template(template: ModelTemplate, tokenizer: PreTrainedTokenizerBase) -> PromptWrapper:
    """``template`` for ``tokenizer``: ``auto`` becomes ``chat`` or ``plain``; a format gets
    the tokenizer's BOS text in front when the tokenizer adds BOS itself."""
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if template.name == CHAT and not has_chat:
        raise ParameterError(
            f"{SETTING_KEY}=chat needs a chat template, but the tokenizer of "
            f"{model_name(tokenizer)!r} has none; choose one of "
            f"{', '.join(c for c in CHOICES if c != CHAT)} or a {{format: '...{{text}}...'}}"
        )
    if template.name == CHAT or (template.name == AUTO and has_chat):
        return PromptWrapper(CHAT, None, "", tokenizer)
    if template.format is None:
        # auto without a chat template is plain; a built-in built in code gets its format.
        template = parse_model_template(
            PLAIN if template.name == AUTO else template.name, SETTING_KEY
        )
    probe = template.format.format(text=PROBE_TEXT)
    return PromptWrapper(template.name, template.format, bos_prefix(tokenizer, probe), tokenizer)


def bos_prefix(tokenizer: PreTrainedTokenizerBase, sample: str) -> str:
    """The text to put before ``sample`` so that encoding it without special tokens gives
    what the tokenizer itself gives with them (BOS first); "" when it adds no BOS.

    Found by encoding, not from attributes such as ``add_bos_token``, which not every
    tokenizer keeps in step with what it does. Some tokenizers (Llama's with
    ``legacy=False``) drop the word-start marker of the text right after a special token,
    so a space after the BOS text is tried too.
    """
    bos_id = tokenizer.bos_token_id
    plain = list(tokenizer(sample, add_special_tokens=False).input_ids)
    own = list(tokenizer(sample, add_special_tokens=True).input_ids)
    if bos_id is None or own[:1] != [bos_id] or plain[:1] == [bos_id]:
        return ""
    wanted = [bos_id, *plain]
    for separator in ("", " "):
        prefix = str(tokenizer.bos_token) + separator
        if list(tokenizer(prefix + sample, add_special_tokens=False).input_ids) == wanted:
            return prefix
    raise ParameterError(
        f"the tokenizer of {model_name(tokenizer)!r} adds its BOS token {tokenizer.bos_token!r} "
        "when it encodes, but that text in front of a prompt does not encode to the same "
        f"tokens (ids {wanted[:6]}...); set {SETTING_KEY} to chat (if the model has a chat "
        "template) or use a model whose tokenizer parses its special tokens in text"
    )


def model_name(tokenizer: PreTrainedTokenizerBase) -> str:
    """The model folder or hub id a tokenizer came from, for messages."""
    return getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
