"""Parse a parameter group into a typed, frozen settings dataclass, checking every key once.

A stage's settings are a frozen dataclass whose field annotations say what each key
takes (``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, ``X | None``,
``tuple[...]``, ``dict[str, ...]`` or a nested settings dataclass). ``parse`` checks a
parameters mapping against them: an unknown key is refused with the closest known one,
a wrong value names its full key (``finetune.lora.n_experts``), the value and what is
allowed. Range limits sit in the field's metadata (``setting(8, minimum=1)``); checks
across fields sit in the dataclass's ``__post_init__``, which raises ``SettingError``
with its own field name (the parser puts the group's path in front).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, Union

from reclora_pipeline.errors import SettingError, UnknownSettingError

T = TypeVar("T")
Parser = Callable[[Any, str], Any]


def setting(
    default: Any = dataclasses.MISSING,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    parse: Parser | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field with range limits (``above`` is exclusive) or a custom parser
    ``parse(value, key)``."""
    metadata = {"minimum": minimum, "maximum": maximum, "above": above, "parse": parse}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def parse(cls: type[T], params: Any, path: str, *, ignore: tuple[str, ...] = ()) -> T:
    """``cls`` built from ``params`` (the group at ``path``); raises SettingError / UnknownSettingError."""
    try:
        return _build(cls, params, ignore)
    except (SettingError, UnknownSettingError) as error:
        raise error.under(path) from None


def check_fields(instance: Any) -> None:
    """Check (and normalise) every field of a settings dataclass against its annotation and
    metadata; call it first in ``__post_init__``. Keys in errors are the field names."""
    hints = typing.get_type_hints(type(instance))
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        checked = _convert(value, hints[field.name], field.name, field.metadata)
        if checked is not value:
            object.__setattr__(instance, field.name, checked)


def known_keys(cls: type, prefix: str = "") -> list[str]:
    """Every leaf key of ``cls`` (nested settings included), each after ``prefix``."""
    keys = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        nested = _dataclass_in(hints[field.name])
        key = f"{prefix}{field.name}"
        keys.extend(known_keys(nested, f"{key}.") if nested else [key])
    return keys


def _build(cls: type[T], params: Any, ignore: tuple[str, ...] = ()) -> T:
    """``cls(**params)`` after refusing unknown keys; error keys are relative to ``cls``."""
    if isinstance(params, cls):
        return params
    if not isinstance(params, Mapping):
        raise SettingError("", params, "a mapping of settings")
    names = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in ignore]
    for key in params:
        if key in ignore:  # set by the code, not by parameters
            raise UnknownSettingError(str(key), None, names)
        moved = getattr(cls, "MOVED_SETTINGS", {})
        if key in moved:  # a setting another group took over
            raise SettingError(str(key), params[key], f"no value here: it moved to {moved[key]}")
        if key not in names:
            raise UnknownSettingError(str(key), _closest(cls, str(key), names), names)
    return cls(**params)


def _closest(cls: type, key: str, names: list[str]) -> str | None:
    """The known key most like ``key``: a key of that very name in a sub-block (a setting
    that moved), else a near spelling at this level, else a near spelling of a nested key."""
    leaves = [k for k in known_keys(cls) if "." in k and k.rsplit(".", 1)[-1] == key]
    if leaves:
        return leaves[0]
    match = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if match:
        return match[0]
    match = difflib.get_close_matches(key, known_keys(cls), n=1, cutoff=0.75)
    return match[0] if match else None


def _dataclass_in(hint: Any) -> type | None:
    """The settings dataclass a field holds (also through ``X | None``), if any."""
    if dataclasses.is_dataclass(hint):
        return hint
    if _is_union(hint):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(inner) == 1 and dataclasses.is_dataclass(inner[0]):
            return inner[0]
    return None


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


def _convert(value: Any, hint: Any, key: str, metadata: Mapping[str, Any]) -> Any:
    custom = metadata.get("parse")
    result = custom(value, key) if custom else _by_type(value, hint, key)
    _check_range(result, key, metadata)
    return result


def _check_range(value: Any, key: str, limits: Mapping[str, Any]) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    minimum, maximum, above = (limits.get(k) for k in ("minimum", "maximum", "above"))
    wrong = (
        (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
        or (above is not None and value <= above)
    )
    if wrong:
        bounds = [f">= {minimum}" if minimum is not None else "",
                  f"> {above}" if above is not None else "",
                  f"<= {maximum}" if maximum is not None else ""]  # fmt: skip
        kind = "an integer" if isinstance(value, int) else "a number"
        raise SettingError(key, value, f"{kind} {' and '.join(b for b in bounds if b)}")


def _by_type(value: Any, hint: Any, key: str) -> Any:  # noqa: C901 - one branch per type form
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if _is_union(hint):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _by_type(value, inner[0], key)
        raise TypeError(f"{key}: unions other than `X | None` are not supported")
    if origin is Literal:
        if value not in args:
            raise SettingError(key, value, "one of " + ", ".join(repr(a) for a in args))
        return value
    if dataclasses.is_dataclass(hint):
        try:
            return _build(hint, value)
        except (SettingError, UnknownSettingError) as error:
            raise error.under(key) from None
    if hint is bool:
        if not isinstance(value, bool):
            raise SettingError(key, value, "true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingError(key, value, "an integer")
        return value
    if hint is float:
        return _float(value, key)
    if hint is str:
        if not isinstance(value, str):
            raise SettingError(key, value, "a string")
        return value
    if origin is tuple:
        return _tuple(value, args, key)
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise SettingError(key, value, "a mapping")
        item_hint = args[1] if args else Any
        return {str(k): _by_type(v, item_hint, f"{key}.{k}") for k, v in value.items()}
    raise TypeError(f"{key}: unsupported settings type {hint!r}")


def _float(value: Any, key: str) -> float:
    # PyYAML reads `1e-3` (no dot) as a string; accept it rather than fail on style.
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise SettingError(key, value, "a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SettingError(key, value, "a finite number")
    return float(value)


def _tuple(value: Any, args: tuple[Any, ...], key: str) -> tuple[Any, ...]:
    if isinstance(value, (str, Mapping)) or not isinstance(value, (list, tuple)):
        raise SettingError(key, value, "a list")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_by_type(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise SettingError(key, value, f"a list of {len(args)} values")
    return tuple(
        _by_type(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
    )
