"""The error raised for input files that do not match their declared format."""

from __future__ import annotations

from pathlib import Path

from reclora_pipeline.errors import UserInputError


class InputDataError(UserInputError):
    """A raw input file is missing or malformed; the message says where and what was expected."""

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        line: int | None = None,
        column: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.problem = problem
        self.expected = expected
        where = [self.path]
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column '{column}'")
        message = f"{', '.join(where)}: {problem}"
        if expected:
            message += f" (expected {expected})"
        super().__init__(message)
