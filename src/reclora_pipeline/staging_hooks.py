"""Kedro hooks that make each stage of a run atomic and leave a complete DuckDB file.

- Before the first node: take the run's DuckDB files (a second run is refused
  at once, before any parsing), drop pending tables a killed run left behind,
  and start staging outputs (``reclora_pipeline.staging``).
- As soon as every node of a stage in this run has finished, publish that
  stage's outputs together; a failed run discards what it had not published.
- At the end, success or failure: checkpoint and close the DuckDB files.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import duckdb
from kedro.framework.hooks import hook_impl

from reclora_pipeline import duckdb_store
from reclora_pipeline.datasets.duckdb_table_dataset import DuckDBTableDataset
from reclora_pipeline.errors import UserInputError
from reclora_pipeline.hooks import report_concisely
from reclora_pipeline.run_timing import stage_of
from reclora_pipeline.staging import PENDING_SUFFIX, STAGED_OUTPUTS

logger = logging.getLogger(__name__)

_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")
_RUNNER_NAME = re.compile(r"(\w*Runner)\b")


class DatabaseBusyError(UserInputError):
    """Another process holds the DuckDB file this run writes."""


class UnsupportedRunnerError(UserInputError):
    """The run asked for a runner that executes nodes concurrently."""


def check_runner(run_params: dict[str, Any]) -> None:
    """Refuse runners other than the SequentialRunner.

    Staging attributes each output to the stage of the node that is running, and
    DuckDB allows one writer: nodes must run one at a time.
    """
    # Kedro passes the runner object's str(): "<kedro.runner....ThreadRunner object at 0x..>".
    found = _RUNNER_NAME.search(str(run_params.get("runner") or "SequentialRunner"))
    runner = found.group(1) if found else str(run_params.get("runner"))
    if runner != "SequentialRunner":
        raise UnsupportedRunnerError(
            f"this project runs with Kedro's SequentialRunner only, not {runner}: "
            "drop --runner (DuckDB allows one writer, and stages publish atomically)"
        )


def _duckdb_datasets(pipeline: Any, catalog: Any) -> dict[str, DuckDBTableDataset]:
    """One DuckDB table dataset per database file the pipeline reads or writes."""
    found: dict[str, DuckDBTableDataset] = {}
    for name in sorted(pipeline.datasets()):
        dataset = catalog.get(name)
        if isinstance(dataset, DuckDBTableDataset):
            found.setdefault(dataset.database, dataset)
    return found


def take_databases(pipeline: Any, catalog: Any) -> None:
    """Open every DuckDB file of the run now, refusing clearly if another run holds one."""
    for database, dataset in _duckdb_datasets(pipeline, catalog).items():
        try:
            connection = dataset.connection()
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            holder = _LOCK_HOLDER.search(str(error))
            pid = f" (pid {holder.group(1)})" if holder else ""
            raise DatabaseBusyError(
                f"another run holds {database}{pid}; wait for it to finish, or close the "
                "program that has the file open"
            ) from None
        dropped = duckdb_store.drop_tables_with_suffix(connection, PENDING_SUFFIX)
        if dropped:
            logger.info("dropped %d unpublished table(s) of an interrupted run", len(dropped))


class StagedOutputHooks:
    """Publish each stage's outputs together, only once all of its nodes have run."""

    def __init__(self) -> None:
        self._stage_of: dict[str, str] = {}
        self._unfinished: dict[str, set[str]] = {}

    # tryfirst: refuse a busy database before other hooks start anything (an MLflow run).
    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Any, catalog: Any, **_: Any
    ) -> None:
        try:
            check_runner(run_params)
            take_databases(pipeline, catalog)
        except UserInputError as error:
            # Kedro does not call on_pipeline_error for a failure in this hook.
            report_concisely(error)
            raise
        self._stage_of = {node.name: stage_of(node) for node in pipeline.nodes}
        self._unfinished = {}
        for name, stage in self._stage_of.items():
            self._unfinished.setdefault(stage, set()).add(name)
        STAGED_OUTPUTS.begin()

    def _publish_finished_stages(self) -> None:
        finished = [s for s in STAGED_OUTPUTS.stages() if not self._unfinished.get(s)]
        if finished:
            STAGED_OUTPUTS.publish(finished)
            logger.info("published the outputs of %s", ", ".join(sorted(finished)))

    # A node's outputs are saved after after_node_run; the next node's first load or
    # start is the first moment all of them are on disk.
    @hook_impl
    def before_dataset_loaded(self, **_: Any) -> None:
        self._publish_finished_stages()

    @hook_impl
    def before_node_run(self, node: Any, **_: Any) -> None:
        self._publish_finished_stages()
        STAGED_OUTPUTS.stage = self._stage_of.get(node.name, "other")

    @hook_impl
    def after_node_run(self, node: Any, **_: Any) -> None:
        self._unfinished.get(self._stage_of.get(node.name, "other"), set()).discard(node.name)

    @hook_impl
    def after_pipeline_run(self, **_: Any) -> None:
        try:
            stages = sorted(STAGED_OUTPUTS.stages())
            STAGED_OUTPUTS.publish()
            if stages:
                logger.info("published the outputs of %s", ", ".join(stages))
        finally:
            STAGED_OUTPUTS.end()
            duckdb_store.close_all()

    @hook_impl
    def on_pipeline_error(self, **_: Any) -> None:
        try:
            if STAGED_OUTPUTS.stages():
                logger.warning(
                    "the run failed: the outputs of %s keep their last good version",
                    ", ".join(sorted(STAGED_OUTPUTS.stages())),
                )
            STAGED_OUTPUTS.discard()
        finally:
            STAGED_OUTPUTS.end()
            duckdb_store.close_all()
