"""The one test for "no value" in a cell that came out of a DataFrame.

DuckDB's ``.df()`` under pandas 3 says "missing" three ways: ``pd.NA`` in nullable
integer columns, ``NaN`` in ``str`` columns and ``None`` in object columns. Checks
such as ``is None`` or ``np.isnan`` each miss one of them, so every library
function that reads a DataFrame scalar asks :func:`is_missing` instead.
"""

from __future__ import annotations

import pandas as pd
from pandas.api.types import is_scalar


def is_missing(value: object) -> bool:
    """True for None, NaN, ``pd.NA`` and ``NaT``; False for real values, lists included."""
    # A list or array cell (genres, authors) is a value, even an empty one; pd.isna on it
    # would answer element-wise, so only scalars are asked.
    return is_scalar(value) and bool(pd.isna(value))


def text_or_none(value: object) -> str | None:
    """``value`` as a string, or None when it is missing or empty."""
    if is_missing(value):
        return None
    return str(value) or None
