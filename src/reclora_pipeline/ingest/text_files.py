"""Validated reading of delimited text and JSON-lines files into DuckDB.

DuckDB parses the files (fast, parallel, out of core); this module checks what
DuckDB cannot know (the declared format's file names, header, delimiter, field
count) before parsing, refuses integer columns that DuckDB's casts would round
('1.5'), and turns DuckDB's parse errors into ``InputDataError`` messages that
name the file, the line, the column and what was expected.
"""

from __future__ import annotations

import codecs
import gzip
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from reclora_pipeline.duckdb_store import fetch_row
from reclora_pipeline.ingest.errors import InputDataError
from reclora_pipeline.ingest.sql import sql_identifier, sql_literal
from reclora_pipeline.ingest.value_checks import (
    ValueRule,
    check_values,
    first_failing_row,
    integer_rule,
)

# Delimiters tried when a file does not split as declared, to say which one it uses.
_CANDIDATE_DELIMITERS = ("::", "\t", ",", "|", ";")
_DELIMITER_NAMES = {"\t": "tab", ",": "comma", "|": "'|'", "::": "'::'", ";": "';'"}
_TYPE_NAMES = {"BIGINT": "an integer", "INTEGER": "an integer", "DOUBLE": "a number"}
_INTEGER_TYPES = ("BIGINT", "INTEGER")


def delimiter_name(delimiter: str) -> str:
    """A readable name for a delimiter, for messages."""
    return _DELIMITER_NAMES.get(delimiter, repr(delimiter))


@dataclass(frozen=True)
class DelimitedFormat:
    """How one delimited file of a dataset format is laid out.

    ``columns`` maps column names to DuckDB types, in file order for files
    without a header; with a header, the names are looked up in it (other
    columns are read as text and ignored).
    """

    columns: dict[str, str]
    delimiter: str
    header: bool
    encoding: str = "utf-8"
    quote: str = ""
    required: tuple[str, ...] = ()

    def required_columns(self) -> tuple[str, ...]:
        """Columns that must not be empty in any row."""
        return self.required or tuple(self.columns)


def require_folder(folder: str | Path) -> Path:
    """Return ``folder`` as a Path, or fail clearly when it is not a directory."""
    path = Path(folder)
    if not path.is_dir():
        raise InputDataError(path, "folder does not exist", expected="a folder with the data files")
    return path


def find_file(folder: Path, patterns: tuple[str, ...], what: str) -> Path:
    """The first file in ``folder`` matching one of ``patterns`` (glob), or a clear error."""
    for pattern in patterns:
        matches = sorted(folder.glob(pattern))
        if matches:
            return matches[0]
    raise InputDataError(
        folder / patterns[0], f"missing file ({what})", expected=" or ".join(patterns)
    )


def first_line(path: Path, encoding: str) -> str:
    """The first line of ``path`` (plain or .gz), without a UTF-8 byte order mark."""
    # Editors on Windows start UTF-8 files with a BOM; DuckDB skips it, so must the header checks.
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding=encoding, errors="replace") as stream:  # type: ignore[operator]
            return stream.readline().rstrip("\r\n")
    except (OSError, EOFError) as error:
        raise InputDataError(path, f"cannot be read ({error})") from error


def _split(line: str, delimiter: str) -> list[str]:
    return [field.strip().strip('"') for field in line.split(delimiter)]


def _guess_delimiter(line: str, fits: Callable[[list[str]], bool]) -> str | None:
    for delimiter in _CANDIDATE_DELIMITERS:
        if delimiter in line and fits(_split(line, delimiter)):
            return delimiter
    return None


def check_layout(path: Path, layout: DelimitedFormat) -> list[str]:
    """Check the first line of ``path`` against ``layout``; return the file's column names."""
    if not path.is_file():
        raise InputDataError(path, "missing file")
    if path.stat().st_size == 0:
        raise InputDataError(path, "file is empty", expected="at least one data row")
    line = first_line(path, layout.encoding)
    expected_names = list(layout.columns)
    wanted = delimiter_name(layout.delimiter)
    if layout.header:
        names = _split(line, layout.delimiter)
        missing = [name for name in expected_names if name not in names]
        if missing:
            other = _guess_delimiter(line, lambda fields: set(expected_names) <= set(fields))
            if other and other != layout.delimiter:
                raise InputDataError(
                    path,
                    f"header is separated by {delimiter_name(other)}",
                    line=1,
                    expected=f"{wanted}-separated columns {expected_names}",
                )
            raise InputDataError(
                path,
                f"missing or misnamed column(s) {missing} in header {names}",
                line=1,
                expected=f"columns {expected_names}",
            )
        return names
    fields = _split(line, layout.delimiter)
    if len(fields) != len(expected_names):
        other = _guess_delimiter(line, lambda found: len(found) == len(expected_names))
        problem = f"found {len(fields)} field(s) when split by {wanted}"
        if other and other != layout.delimiter:
            problem = f"fields are separated by {delimiter_name(other)}, not {wanted}"
        raise InputDataError(
            path,
            problem,
            line=1,
            expected=f"{len(expected_names)} {wanted}-separated fields {expected_names}",
        )
    return expected_names


_LINE = re.compile(r"[Ll]ine:?\s*(\d+)")
_CONVERSION = re.compile(r'column "?([^".]+)"?\. Could not convert string "(.*?)" to \'?(\w+)')
_FIELD_COUNT = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def translate_duckdb_error(path: Path, error: duckdb.Error, layout_note: str) -> InputDataError:
    """Turn a DuckDB parse error into an ``InputDataError`` naming line, column and expectation."""
    text = str(error)
    line_match = _LINE.search(text)
    line = int(line_match.group(1)) if line_match else None
    conversion = _CONVERSION.search(text)
    if conversion:
        column, value, sql_type = conversion.groups()
        return InputDataError(
            path,
            f"value {value!r} is not {_TYPE_NAMES.get(sql_type, sql_type)}",
            line=line,
            column=column,
            expected=_TYPE_NAMES.get(sql_type, sql_type),
        )
    count = _FIELD_COUNT.search(text)
    if count:
        return InputDataError(
            path,
            f"found {count.group(2)} field(s)",
            line=line,
            expected=f"{count.group(1)} fields ({layout_note})",
        )
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return InputDataError(path, f"cannot be parsed: {first}", line=line, expected=layout_note)


def _columns_sql(columns: dict[str, str]) -> str:
    """DuckDB's ``columns`` argument: a struct of column names to type names."""
    return "{" + ", ".join(f"{sql_literal(n)}: {sql_literal(t)}" for n, t in columns.items()) + "}"


def _csv_source(path: Path, layout: DelimitedFormat, columns: dict[str, str]) -> str:
    """A ``read_csv(...)`` expression reading ``path`` with the given column types."""
    return (
        f"read_csv({sql_literal(str(path))}, delim={sql_literal(layout.delimiter)}, "
        f"header={str(layout.header).lower()}, columns={_columns_sql(columns)}, "
        "auto_detect=false, "
        f"quote={sql_literal(layout.quote)}, escape={sql_literal(layout.quote)}, "
        f"encoding={sql_literal(layout.encoding)}, strict_mode=true, null_padding=false)"
    )


def read_delimited(
    connection: duckdb.DuckDBPyConnection, path: Path, layout: DelimitedFormat, table: str
) -> None:
    """Parse ``path`` into table ``table`` of ``connection`` with the declared types.

    Checks the layout first, then that integer columns hold integers, then lets
    DuckDB parse with the exact types, and finally rejects empty files and
    empty required fields, naming the line.
    """
    names = check_layout(path, layout)
    columns = {name: layout.columns.get(name, "VARCHAR") for name in names}
    note = f"{delimiter_name(layout.delimiter)}-separated {list(layout.columns)}"
    _check_integers(connection, path, layout, columns, note)
    source = _csv_source(path, layout, columns)
    selected = ", ".join(sql_identifier(name) for name in layout.columns)
    try:
        connection.execute(
            f"CREATE OR REPLACE TEMP TABLE {sql_identifier(table)} AS "
            f"SELECT {selected} FROM {source}"
        )
    except duckdb.Error as error:
        raise translate_duckdb_error(path, error, note) from None
    _check_not_empty(connection, path, table)
    _check_required(connection, path, table, source, layout.required_columns(), int(layout.header))


def _check_integers(
    connection: duckdb.DuckDBPyConnection,
    path: Path,
    layout: DelimitedFormat,
    columns: dict[str, str],
    note: str,
) -> None:
    """Refuse integer columns written as '1.5' or '1e3', which DuckDB's casts would accept.

    One scan of the file with those columns read as text; the typed read follows.
    """
    integers = [name for name in layout.columns if layout.columns[name] in _INTEGER_TYPES]
    if not integers:
        return
    as_text = {name: "VARCHAR" if name in integers else kind for name, kind in columns.items()}
    source = _csv_source(path, layout, as_text)
    try:
        check_values(
            connection, path, source, [integer_rule(name) for name in integers], int(layout.header)
        )
    except duckdb.Error as error:
        raise translate_duckdb_error(path, error, note) from None


def read_json_lines(
    connection: duckdb.DuckDBPyConnection, path: Path, columns: dict[str, str], table: str
) -> None:
    """Parse a JSON-lines file (plain or .gz) into ``table``, keeping only ``columns``."""
    if path.stat().st_size == 0:
        raise InputDataError(path, "file is empty", expected="one JSON object per line")
    first = first_line(path, "utf-8").lstrip()
    if not first.startswith("{"):
        raise InputDataError(path, "is not JSON lines", line=1, expected="one JSON object per line")
    source = (
        f"read_json({sql_literal(str(path))}, format='newline_delimited', "
        f"columns={_columns_sql(columns)})"
    )
    try:
        connection.execute(
            f"CREATE OR REPLACE TEMP TABLE {sql_identifier(table)} AS SELECT * FROM {source}"
        )
    except duckdb.Error as error:
        raise translate_duckdb_error(
            path, error, f"JSON objects with keys {list(columns)}"
        ) from None
    _check_not_empty(connection, path, table)
    _check_required(connection, path, table, source, tuple(columns), 0)


def _check_not_empty(connection: duckdb.DuckDBPyConnection, path: Path, table: str) -> None:
    if fetch_row(connection, f"SELECT count(*) FROM {sql_identifier(table)}")[0] == 0:
        raise InputDataError(path, "has no data rows", expected="at least one data row")


def _check_required(
    connection: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    source: str,
    required: tuple[str, ...],
    header_lines: int,
) -> None:
    counts = ", ".join(
        f"count(*) FILTER (WHERE {sql_identifier(name)} IS NULL)" for name in required
    )
    nulls = fetch_row(connection, f"SELECT {counts} FROM {sql_identifier(table)}")
    for name, count in zip(required, nulls, strict=True):
        if count:
            # Only on failure: number the rows in file order to name the first bad line.
            rule = ValueRule(name, "{v} IS NULL", "is empty", "a value in every row")
            row, _ = first_failing_row(connection, source, rule)
            raise InputDataError(
                path,
                f"empty value ({count} row(s) in all)",
                line=row + header_lines,
                column=name,
                expected=rule.expected,
            )


def check_unique(
    connection: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    keys: tuple[str, ...],
    header_lines: int,
) -> None:
    """Reject duplicated key rows (e.g. the same user, item and timestamp twice)."""
    key_sql = ", ".join(sql_identifier(key) for key in keys)
    duplicated = fetch_row(
        connection,
        f"SELECT {key_sql}, count(*) FROM {sql_identifier(table)} "
        "GROUP BY ALL HAVING count(*) > 1 LIMIT 1",
    )
    if duplicated is None:
        return
    values = dict(zip(keys, duplicated[:-1], strict=True))
    condition = " AND ".join(f"{sql_identifier(key)} = ?" for key in keys)
    lines = connection.execute(
        f"SELECT n FROM (SELECT row_number() OVER () AS n, * FROM {sql_identifier(table)}) "
        f"WHERE {condition} ORDER BY n LIMIT 2",
        list(values.values()),
    ).fetchall()
    line = int(lines[-1][0]) + header_lines if lines else None
    first = int(lines[0][0]) + header_lines if lines else None
    raise InputDataError(
        path,
        f"duplicated row {values} (first seen on line {first})",
        line=line,
        expected=f"each ({', '.join(keys)}) at most once",
    )
