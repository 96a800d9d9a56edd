"""Quoting of names and values put into SQL text.

Column names come from users' files (RecBole headers), so every identifier and
string put into SQL text goes through these two functions: nothing in a file
can end the quoted name or value and add SQL of its own.
"""

from __future__ import annotations


def sql_literal(text: str) -> str:
    """``text`` as a single-quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (column or table name)."""
    return '"' + name.replace('"', '""') + '"'
