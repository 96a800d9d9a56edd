"""Checks of the values in parsed source tables: integers, rating scale, timestamps.

Each check is one SQL aggregate over the whole table or file (fast at ML-25M
scale); only when a check fails are the rows numbered, in file order, to name
the first bad line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from reclora_pipeline.duckdb_store import fetch_row
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.ingest.errors import InputDataError
from reclora_pipeline.ingest.sql import sql_identifier, sql_literal

# DuckDB's integer casts also take '1.5' (rounded), '1e3', '1_000' and '0x10'; files must not.
INTEGER_PATTERN = r"^\s*[+-]?[0-9]+\s*$"
# Largest timestamp that still fits a BIGINT after the cast from a RecBole float field.
_MAX_TIMESTAMP = 9.2e18

RatingScale = tuple[float, float]


@dataclass(frozen=True)
class ValueRule:
    """Rows where ``bad`` holds for ``column`` are refused.

    ``bad`` is an SQL condition in which ``{v}`` stands for the column;
    the message reads ``value <v> <problem> (expected <expected>)``.
    """

    column: str
    bad: str
    problem: str
    expected: str

    def condition(self, column_sql: str) -> str:
        """``bad`` applied to ``column_sql`` (a quoted column name or alias)."""
        return self.bad.replace("{v}", column_sql)


def integer_rule(column: str) -> ValueRule:
    """A text column whose values must be written as integers."""
    return ValueRule(
        column,
        f"NOT regexp_full_match({{v}}, {sql_literal(INTEGER_PATTERN)})",
        "is not an integer",
        "an integer",
    )


def rating_rules(column: str, scale: RatingScale) -> tuple[ValueRule, ...]:
    """A DOUBLE rating column: a number (not NaN) inside ``scale``."""
    low, high = scale
    expected = f"a number from {low:g} to {high:g}"
    outside = f"NOT isnan({{v}}) AND ({{v}} < {float(low)!r} OR {{v}} > {float(high)!r})"
    return (
        ValueRule(column, "isnan({v})", "is not a number", expected),
        ValueRule(column, outside, "is outside the rating scale", expected),
    )


def timestamp_rule(column: str, *, floating: bool = False) -> ValueRule:
    """A timestamp column (BIGINT, or DOUBLE when ``floating``): non-negative seconds."""
    bad = f"isnan({{v}}) OR {{v}} < 0 OR {{v}} >= {_MAX_TIMESTAMP!r}" if floating else "{v} < 0"
    return ValueRule(column, bad, "is not a valid timestamp", "a non-negative Unix time in seconds")


def check_values(
    connection: duckdb.DuckDBPyConnection,
    path: Path,
    source: str,
    rules: Sequence[ValueRule],
    header_lines: int,
) -> None:
    """Refuse the first row of ``source`` (a table or a ``read_csv(...)``) breaking a rule."""
    if not rules:
        return
    counts = ", ".join(
        f"count(*) FILTER (WHERE {rule.condition(sql_identifier(rule.column))})" for rule in rules
    )
    totals = fetch_row(connection, f"SELECT {counts} FROM {source}") or ()
    failing = [rule for rule, total in zip(rules, totals, strict=True) if total]
    if not failing:
        return
    # Only on failure: the earliest bad row over all failing rules, as a reader would meet it.
    row, value, rule = min(
        ((*first_failing_row(connection, source, rule), rule) for rule in failing),
        key=lambda found: found[0],
    )
    raise InputDataError(
        path,
        f"value {value!r} {rule.problem}",
        line=row + header_lines,
        column=rule.column,
        expected=rule.expected,
    )


def first_failing_row(
    connection: duckdb.DuckDBPyConnection, source: str, rule: ValueRule
) -> tuple[int, Any]:
    """Row number (1-based, in file order) and value of the first row breaking ``rule``."""
    found = fetch_row(
        connection,
        f"SELECT n, v FROM (SELECT row_number() OVER () AS n, {sql_identifier(rule.column)} AS v "
        f"FROM {source}) WHERE {rule.condition('v')} ORDER BY n LIMIT 1",
    )
    if found is None:  # the aggregate saw a bad row, so this cannot happen
        raise AssertionError(f"no row of {source} breaks {rule}")
    return int(found[0]), found[1]


def parse_rating_scale(value: object) -> RatingScale | None:
    """Validate ``ingest.rating_scale``: null, or a ``[min, max]`` pair of numbers, min < max."""
    if value is None:
        return None
    pair = list(value) if isinstance(value, list | tuple) else None
    if (
        pair is None
        or len(pair) != 2
        or not all(_is_finite_number(bound) for bound in pair)
        or not float(pair[0]) < float(pair[1])
    ):
        raise ParameterError(
            f"ingest.rating_scale is {value!r}; expected null (the format's own scale) "
            "or a [min, max] pair of numbers with min < max, e.g. [0, 10]"
        )
    return float(pair[0]), float(pair[1])


def _is_finite_number(value: object) -> bool:
    # bool is an int in Python, but `true` is no rating bound.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
