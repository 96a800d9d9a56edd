"""The header line of a RecBole atomic file: tab-separated ``name:type`` fields."""

from __future__ import annotations

import re
from pathlib import Path

from reclora_pipeline.ingest.errors import InputDataError
from reclora_pipeline.ingest.text_files import first_line

RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Long enough to recognise a field in the message, short enough to keep the message readable.
_SHOWN_CHARACTERS = 60
_EXPECTED_FIELD = (
    "tab-separated 'name:type' fields, the name made of letters, digits and '_' "
    f"(not starting with a digit), the type one of {', '.join(RECBOLE_TYPES)}"
)


def read_recbole_header(path: Path) -> dict[str, str]:
    """Map base field names to full header names (``rating`` -> ``rating:float``).

    Every field is validated: the names end up in SQL text and in the output.
    """
    if not path.is_file() or path.stat().st_size == 0:
        raise InputDataError(path, "missing or empty file", expected="a RecBole atomic file")
    fields = first_line(path, "utf-8").split("\t")
    for field in fields:
        _check_field(path, field)
    return {field.split(":", 1)[0]: field for field in fields}


def _check_field(path: Path, field: str) -> None:
    name, colon, field_type = field.partition(":")
    if colon and _FIELD_NAME.fullmatch(name) and field_type in RECBOLE_TYPES:
        return
    raise InputDataError(
        path,
        f"header field {_shown(field)} is not a RecBole 'name:type' field",
        line=1,
        expected=_EXPECTED_FIELD,
    )


def _shown(text: str) -> str:
    """``repr(text)``, cut short when very long."""
    if len(text) <= _SHOWN_CHARACTERS:
        return repr(text)
    return f"{text[:_SHOWN_CHARACTERS]!r}... ({len(text)} characters)"
