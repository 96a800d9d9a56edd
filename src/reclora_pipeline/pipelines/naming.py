"""Helpers shared by the pipeline definitions."""

from functools import partial, update_wrapper


def named_partial(function, **fixed):
    """``partial`` that keeps the function's name and docstring (kedro-viz shows them)."""
    return update_wrapper(partial(function, **fixed), function)
