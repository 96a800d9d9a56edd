"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reclora_pipeline import duckdb_store
from tests.sources import World, small_world

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def world() -> World:
    return small_world()


@pytest.fixture
def database(tmp_path: Path):
    """A fresh DuckDB file; shared connections are closed after the test."""
    yield tmp_path / "test.duckdb"
    duckdb_store.close_all()
