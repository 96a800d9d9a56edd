"""The user-facing errors of the library: one family, reported without a traceback.

Every error a user fixes in their data, parameters or saved artifacts derives from
``UserInputError``; the Kedro hooks print such an error as one line.
"""

from __future__ import annotations

from typing import Any


class UserInputError(ValueError):
    """A problem in the user's input files or parameters; the message says how to fix it."""


class ParameterError(UserInputError):
    """A parameter has a value the pipeline cannot use; the message names it and the accepted values."""


class SettingError(ParameterError):
    """One setting's value is not allowed: names the full key, the value and what is allowed.

    Library code raises it with the key it knows (``n_experts``); the settings parser
    re-raises it under the parameter group's path (``finetune.lora.n_experts``).
    """

    def __init__(self, key: str, value: Any, expected: str, hint: str = "") -> None:
        self.key, self.value, self.expected, self.hint = key, value, expected, hint
        message = f"{key}={value!r} is not allowed: expected {expected}"
        super().__init__(message + (f"; {hint}" if hint else ""))

    def under(self, prefix: str) -> SettingError:
        """The same error with ``prefix.`` in front of its key."""
        key = f"{prefix}.{self.key}" if self.key else prefix
        return SettingError(key, self.value, self.expected, self.hint)


class UnknownSettingError(ParameterError):
    """A parameter key no setting has (most often a typo); names the closest known key."""

    def __init__(self, key: str, suggestion: str | None, known: list[str]) -> None:
        self.key, self.suggestion, self.known = key, suggestion, known
        advice = f"did you mean {suggestion}?" if suggestion else f"known keys: {', '.join(known)}"
        super().__init__(f"{key} is not a setting; {advice}")

    def under(self, prefix: str) -> UnknownSettingError:
        """The same error with ``prefix.`` in front of every key it names."""
        suggestion = f"{prefix}.{self.suggestion}" if self.suggestion else None
        return UnknownSettingError(
            f"{prefix}.{self.key}", suggestion, [f"{prefix}.{k}" for k in self.known]
        )
