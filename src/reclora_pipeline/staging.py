"""Outputs of a run held back until their stage has finished, then published together.

A stage (ingest, item_text, ...) writes several tables and files. If it fails
half-way, the last good run of that stage must stay exactly as it was, so
during a run (``STAGED_OUTPUTS.begin()``) every output is written to a pending
copy beside its final place: a ``<table>__pending`` table, a hidden
``.<file>.pending`` file or folder. Later nodes of the same run read the pending
copies. When every node of a stage has run, ``publish`` swaps that stage's
tables in with one DuckDB transaction per database file and then renames its
files into place; a failed run ``discard``s what it had not published.

Outside a run (tests, notebooks) nothing is active and outputs are written in
place directly, each still atomically.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reclora_pipeline import duckdb_store

PENDING_SUFFIX = "__pending"


def pending_table_name(name: str) -> str:
    """The table a run writes before ``name`` is published."""
    return f"{name}{PENDING_SUFFIX}"


def pending_path(path: Path) -> Path:
    """The hidden file or folder a run writes before ``path`` is published."""
    return path.with_name(f".{path.name}.pending")


@dataclass(frozen=True)
class PendingTable:
    """A table written as ``<name>__pending`` in ``database``."""

    database: str
    name: str


@dataclass(frozen=True)
class PendingPath:
    """A file or folder written to ``pending_path(target)``."""

    target: Path


PendingOutput = PendingTable | PendingPath


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _publish_path(target: Path) -> None:
    """Move the pending copy of ``target`` into place (a folder swaps via a retired copy)."""
    pending = pending_path(target)
    if pending.is_dir():
        retired = target.with_name(f".{target.name}.retired")
        _remove(retired)
        if target.exists():
            target.rename(retired)
        pending.rename(target)
        _remove(retired)
    else:
        os.replace(pending, target)


def _publish_tables(tables: list[PendingTable]) -> None:
    by_database: dict[str, list[str]] = {}
    for table in tables:
        by_database.setdefault(table.database, []).append(table.name)
    for database, names in by_database.items():
        duckdb_store.publish_tables(
            duckdb_store.connect(database),
            {pending_table_name(name): name for name in names},
        )


class StagedOutputs:
    """The pending outputs of the current run, grouped by the stage that wrote them."""

    def __init__(self) -> None:
        self.active = False
        self.stage: str = "other"
        self._pending: dict[PendingOutput, str] = {}

    def begin(self) -> None:
        """Start a run: from now on outputs are written as pending copies."""
        self.active = True
        self.stage = "other"
        self._pending = {}

    def end(self) -> None:
        """Stop staging (after ``publish`` or ``discard``)."""
        self.active = False
        self._pending = {}

    def add(self, output: PendingOutput) -> None:
        """Record that the current stage wrote ``output``'s pending copy."""
        self._pending[output] = self.stage

    def is_pending(self, output: PendingOutput) -> bool:
        """Whether this run has written ``output`` and not yet published it."""
        return self.active and output in self._pending

    def write_path(self, target: Path) -> Path:
        """Where a save of ``target`` writes now: its pending copy during a run."""
        if not self.active:
            return target
        self.add(PendingPath(target))
        return pending_path(target)

    def read_path(self, target: Path) -> Path:
        """Where ``target`` is read from now: this run's pending copy if it wrote one."""
        return pending_path(target) if self.is_pending(PendingPath(target)) else target

    def stages(self) -> set[str]:
        """Stages with unpublished outputs."""
        return set(self._pending.values())

    def publish(self, stages: Iterable[str] | None = None) -> None:
        """Publish the outputs of ``stages`` (all when None): tables first, in one
        transaction per database, then files and folders."""
        chosen = set(self._pending.values()) if stages is None else set(stages)
        outputs = [output for output, stage in self._pending.items() if stage in chosen]
        _publish_tables([output for output in outputs if isinstance(output, PendingTable)])
        for output in outputs:
            if isinstance(output, PendingPath):
                _publish_path(output.target)
            del self._pending[output]

    def discard(self) -> None:
        """Drop every unpublished output; the published ones stay as they were."""
        tables = [output for output in self._pending if isinstance(output, PendingTable)]
        for database in {table.database for table in tables}:
            duckdb_store.drop_tables_with_suffix(duckdb_store.connect(database), PENDING_SUFFIX)
        for output in self._pending:
            if isinstance(output, PendingPath):
                _remove(pending_path(output.target))
        self._pending = {}


# One run at a time per process: Kedro's SequentialRunner (DuckDB has a single writer).
STAGED_OUTPUTS = StagedOutputs()
