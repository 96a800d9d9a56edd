"""The candidates file: read, checked, and its ids mapped to the data set's dense ids.

A candidates file names (user, item) pairs in the data set's own ids (the source's, as in
``users.source_user_id`` / ``items.source_item_id``) and optionally the time to score them
at. Every problem is reported at once, with counts and a few examples, before anything
is computed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from reclora_pipeline.duckdb_store import DuckDBTable
from reclora_pipeline.errors import UserInputError

ID_COLUMNS = ("user_id", "item_id")
TIMESTAMP = "timestamp"
MAX_EXAMPLES = 5
# The name the file's rows are registered under while they are matched in DuckDB.
_VIEW = "predict_candidates_file"


def read_candidates_file(path: Path) -> pa.Table:
    """``user_id``, ``item_id`` and, when the file has it, ``timestamp`` of every row.

    CSV ids are read as text (so ``"007"`` stays itself) and cast to the data set's id
    type when matched; a timestamp column of a date-time type becomes epoch seconds, the
    unit of the ingested timestamps.
    """
    if not path.is_file():
        raise UserInputError(f"candidates file {path} does not exist (predict.candidates)")
    try:
        if path.suffix.lower() == ".csv":
            text = {name: pa.string() for name in (*ID_COLUMNS, TIMESTAMP)}
            options = pacsv.ConvertOptions(column_types=text, strings_can_be_null=True)
            table = pacsv.read_csv(path, convert_options=options)
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise UserInputError(f"candidates file {path} cannot be read: {error}") from None
    missing = [name for name in ID_COLUMNS if name not in table.column_names]
    if missing:
        raise UserInputError(
            f"candidates file {path} lacks the column(s) {missing}: expected user_id, item_id "
            f"and optionally timestamp; it has {table.column_names}"
        )
    if table.num_rows == 0:
        raise UserInputError(f"candidates file {path} has no rows to score")
    table = table.select([name for name in (*ID_COLUMNS, TIMESTAMP) if name in table.column_names])
    time_type = table.schema.field(TIMESTAMP).type if TIMESTAMP in table.column_names else None
    if time_type is not None and pa.types.is_timestamp(time_type):
        seconds = pc.cast(table.column(TIMESTAMP), pa.timestamp("s")).cast(pa.int64())
        table = table.set_column(table.schema.get_field_index(TIMESTAMP), TIMESTAMP, seconds)
    return _whole_numbers(table, path)


def _whole_numbers(table: pa.Table, path: Path) -> pa.Table:
    """Float columns as integers (pandas writes an integer column with gaps as float), but
    refuse fractions: casting 1.5 to an id would silently round it."""
    for index, field in enumerate(table.schema):
        if not pa.types.is_floating(field.type):
            continue
        column = table.column(index)
        fractional = pc.not_equal(pc.floor(column), column)
        problem = _problem(path, column, fractional, f"a {field.name} that is not a whole number")
        if problem:
            raise UserInputError(f"candidates file {path}: {problem}")
        table = table.set_column(index, field.name, pc.cast(column, pa.int64()))
    return table


def _column_type(table: DuckDBTable, column: str) -> str:
    """The DuckDB type of ``column`` (the store's own schema, safe to put into SQL)."""
    return str(table.connection.sql(f"SELECT {column} FROM {table.sql_name} LIMIT 0").types[0])


def resolve_candidates(
    table: pa.Table, path: Path, users: DuckDBTable, items: DuckDBTable
) -> pa.Table:
    """The rows of ``table`` (read from ``path``) with the data set's dense ids.

    Columns: ``row`` (position in the file, from 0), ``user_id`` / ``item_id`` (dense),
    ``source_user_id`` / ``source_item_id`` (as the data set spells them) and ``timestamp``
    (null = as of the user's latest interaction). Unknown users or items and timestamps
    that are not integers stop with one :class:`UserInputError` naming them all.
    """
    has_time = TIMESTAMP in table.column_names
    numbered = table.append_column("row", pa.array(np.arange(table.num_rows), pa.int64()))
    connection = users.connection
    user_type = _column_type(users, "source_user_id")
    item_type = _column_type(items, "source_item_id")
    time = "TRY_CAST(c.timestamp AS BIGINT)" if has_time else "NULL::BIGINT"
    # A registered view, not a Python-variable scan: explicit, and dropped afterwards.
    connection.register(_VIEW, numbered)
    try:
        resolved = connection.sql(
            f"""SELECT c.row, u.user_id, i.item_id, u.source_user_id, i.source_item_id,
                       {time} AS timestamp
                FROM {_VIEW} c
                LEFT JOIN {users.sql_name} u ON u.source_user_id = TRY_CAST(c.user_id AS {user_type})
                LEFT JOIN {items.sql_name} i ON i.source_item_id = TRY_CAST(c.item_id AS {item_type})
                ORDER BY c.row"""
        ).to_arrow_table()
    finally:
        connection.unregister(_VIEW)
    problems = [
        _problem(path, table.column("user_id"), resolved.column("user_id").is_null(),
                 "a user_id the data set does not have (users.source_user_id)"),
        _problem(path, table.column("item_id"), resolved.column("item_id").is_null(),
                 "an item_id the data set does not have (items.source_item_id)"),
    ]  # fmt: skip
    if has_time:
        given = table.column(TIMESTAMP).is_valid()
        bad = pc.and_(given, resolved.column(TIMESTAMP).is_null())
        problems.append(_problem(path, table.column(TIMESTAMP), bad,
                                 "a timestamp that is not an integer (epoch seconds)"))  # fmt: skip
    problems = [problem for problem in problems if problem]
    if problems:
        raise UserInputError(f"candidates file {path}: " + "; ".join(problems))
    return resolved


def _problem(path: Path, values: pa.ChunkedArray, bad: pa.ChunkedArray, what: str) -> str:
    """'<n> of <rows> rows have <what>, e.g. ...' with up to MAX_EXAMPLES distinct values
    and where they first occur; empty when no row is ``bad``."""
    rows = np.flatnonzero(pc.fill_null(bad, False).to_numpy(zero_copy_only=False))
    if len(rows) == 0:
        return ""
    shown = values.take(pa.array(rows)).to_pylist()
    examples: dict[str, int] = {}
    for row, value in zip(rows, shown, strict=True):
        text = "<empty>" if value is None else repr(value)
        examples.setdefault(text, int(row))
        if len(examples) == MAX_EXAMPLES:
            break
    listed = ", ".join(f"{text} ({_where(path, row)})" for text, row in examples.items())
    distinct = len({repr(value) for value in shown})
    return (
        f"{len(rows)} of {len(values)} rows ({distinct} distinct value{'s' * (distinct != 1)}) "
        f"have {what}, e.g. {listed}"
    )


def _where(path: Path, row: int) -> str:
    """Where row ``row`` (from 0) is in the file: a CSV line (after the header) or a row."""
    return f"line {row + 2}" if path.suffix.lower() == ".csv" else f"row {row + 1}"
