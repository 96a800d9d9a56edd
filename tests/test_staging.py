"""Stage-level atomicity: a failed run leaves every output of the last good run as it was."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner

from reclora_pipeline import duckdb_store
from reclora_pipeline.datasets import AtomicJSONDataset, DuckDBTableDataset, FolderDataset
from reclora_pipeline.pipelines.ingest import create_pipeline as ingest_pipeline
from reclora_pipeline.pipelines.ingest.pipeline import INGEST_TABLES
from reclora_pipeline.pipelines.item_text import create_pipeline as item_text_pipeline
from reclora_pipeline.staging import STAGED_OUTPUTS, pending_path
from reclora_pipeline.staging_hooks import StagedOutputHooks
from tests.database_holder import database_held_by_another_process
from tests.pipelines.catalog import project_parameters, temporary_catalog
from tests.sources import WRITERS, small_world
from tests.tiny_models import save_tiny_llama


@pytest.fixture
def staged():
    """Staging active for the test, always ended afterwards."""
    STAGED_OUTPUTS.begin()
    yield STAGED_OUTPUTS
    STAGED_OUTPUTS.end()
    duckdb_store.close_all()


def test_pending_tables_are_read_in_the_run_and_published_together(database, staged):
    first = DuckDBTableDataset("first", str(database))
    second = DuckDBTableDataset("second", str(database))
    staged.end()
    first.save(pa.table({"x": [1]}))
    second.save(pa.table({"x": [2]}))
    staged.begin()

    staged.stage = "ingest"
    first.save(pa.table({"x": [10]}))
    second.save(pa.table({"x": [20]}))
    # The run reads its own new rows; anybody else still sees the last good ones.
    assert first.load().df().x.tolist() == [10]
    outside = duckdb_store.connect(database)
    assert outside.execute("SELECT x FROM first").fetchall() == [(1,)]

    staged.publish(["ingest"])
    assert outside.execute("SELECT x FROM first UNION ALL SELECT x FROM second").fetchall() == [
        (10,),
        (20,),
    ]
    assert not duckdb_store.drop_tables_with_suffix(outside, "__pending")


def test_discard_keeps_the_last_good_tables_and_files(tmp_path, database, staged):
    table = DuckDBTableDataset("t", str(database))
    report = AtomicJSONDataset(str(tmp_path / "report.json"))
    adapter = FolderDataset(str(tmp_path / "adapters/reclora"))
    source = tmp_path / "new_adapter"
    source.mkdir()
    (source / "weights").write_text("new")
    staged.end()
    table.save(pa.table({"x": [1]}))
    report.save({"run": "good"})
    staged.begin()

    table.save(pa.table({"x": [2]}))
    report.save({"run": "failed"})
    adapter.save(source)
    assert report.load() == {"run": "failed"}
    assert (adapter.load() / "weights").read_text() == "new"
    staged.discard()

    assert table.load().df().x.tolist() == [1]
    assert report.load() == {"run": "good"}
    assert not adapter.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if "duckdb" not in p.name) == [
        "adapters", "new_adapter", "report.json",
    ]  # fmt: skip
    assert list((tmp_path / "adapters").iterdir()) == []


def test_published_folder_replaces_the_old_one_whole(tmp_path, staged):
    adapter = FolderDataset(str(tmp_path / "adapter"))
    old, new = tmp_path / "old", tmp_path / "new"
    for folder, files in ((old, ("a", "b")), (new, ("c",))):
        folder.mkdir()
        for name in files:
            (folder / name).write_text(name)
    staged.end()
    adapter.save(old)
    staged.begin()
    adapter.save(new)
    assert sorted(p.name for p in (tmp_path / "adapter").iterdir()) == ["a", "b"]
    staged.publish()
    assert sorted(p.name for p in adapter.load().iterdir()) == ["c"]
    assert not pending_path(tmp_path / "adapter").exists()


def test_reports_are_readable_by_the_group(tmp_path):
    previous = os.umask(0o022)
    try:
        AtomicJSONDataset(str(tmp_path / "r.json")).save({"a": 1})
        source = tmp_path / "src"
        source.mkdir()
        (source / "f").write_text("x")
        FolderDataset(str(tmp_path / "folder")).save(source)
    finally:
        os.umask(previous)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o755


# --- through Kedro's runner with the project's hook -------------------------------


def _run_with_hooks(pipeline: Pipeline, catalog, run_params: dict | None = None) -> None:
    """What ``KedroSession.run`` does around the runner, with only the staging hook."""
    hook_manager = _create_hook_manager()
    hook_manager.register(StagedOutputHooks())
    hook_manager.hook.before_pipeline_run(
        run_params=run_params or {}, pipeline=pipeline, catalog=catalog
    )
    try:
        SequentialRunner().run(pipeline, catalog, hook_manager)
    except Exception as error:
        hook_manager.hook.on_pipeline_error(
            error=error, run_params={}, pipeline=pipeline, catalog=catalog
        )
        raise
    hook_manager.hook.after_pipeline_run(
        run_params={}, run_result={}, pipeline=pipeline, catalog=catalog
    )


def _failing_at(pipeline: Pipeline, name: str) -> Pipeline:
    """``pipeline`` with node ``name`` (without its stage) replaced by one that fails (same
    inputs, outputs and stage)."""

    def fail(*_):
        raise RuntimeError(f"injected failure in {name}")

    def replaced(n):
        return node(fail, n.inputs, n.outputs, name=name, namespace=n.namespace)

    return Pipeline(
        [replaced(n) if n.name == f"{n.namespace}.{name}" else n for n in pipeline.nodes]
    )


def _ingest_catalog(folder: Path, source: Path, k_core: int):
    params = project_parameters()
    params["ingest"].update(format="ml-1m", path=str(source), k_core=k_core, min_history=3)
    return temporary_catalog(folder, params)


def _fingerprint(folder: Path, tables=INGEST_TABLES, reports=("ingest_summary.json",)) -> dict:
    """Row count and content hash of each table, and the text of each report."""
    connection = duckdb.connect(str(folder / "db.duckdb"), read_only=True)
    try:
        prints = {
            table: connection.execute(
                f"SELECT count(*), sum(hash(t::VARCHAR)) FROM {table} t"
            ).fetchall()
            for table in tables
        }
        prints["tables"] = sorted(
            row[0]
            for row in connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        )
    finally:
        connection.close()
    for name in reports:
        prints[name] = (folder / name).read_text()
    return prints


@pytest.fixture
def ingested_once(tmp_path, world):
    """A folder after one good ingest (k-core 2) through the hooks, its source folder, and
    another source whose every table differs."""
    source = WRITERS["ml-1m"](tmp_path / "source", world)
    folder = tmp_path / "outputs"
    _run_with_hooks(ingest_pipeline(), _ingest_catalog(folder, source, k_core=2))
    other = WRITERS["ml-1m"](tmp_path / "other", small_world(users=10, items=14, per_user=10))
    yield folder, source, other
    duckdb_store.close_all()


@pytest.mark.parametrize("failing_node", ["read_raw_tables", "index_users", "summarize_ingest"])
def test_a_failed_stage_changes_none_of_its_outputs(ingested_once, failing_node):
    folder, _, other = ingested_once
    before = _fingerprint(folder)
    with pytest.raises(RuntimeError, match="injected failure"):
        _run_with_hooks(
            _failing_at(ingest_pipeline(), failing_node), _ingest_catalog(folder, other, 2)
        )
    assert _fingerprint(folder) == before
    assert not STAGED_OUTPUTS.active

    # The same run without the failure replaces every table.
    _run_with_hooks(ingest_pipeline(), _ingest_catalog(folder, other, k_core=2))
    after = _fingerprint(folder)
    assert all(after[key] != before[key] for key in (*INGEST_TABLES, "ingest_summary.json"))


def test_a_failed_save_of_the_last_node_changes_nothing(ingested_once):
    folder, _, other = ingested_once
    before = _fingerprint(folder)
    # The summary cannot be written: its pending path is taken by a folder.
    (pending_path(folder / "ingest_summary.json") / "blocker").mkdir(parents=True)
    with pytest.raises(Exception, match="ingest_summary"):
        _run_with_hooks(ingest_pipeline(), _ingest_catalog(folder, other, k_core=2))
    assert _fingerprint(folder) == before


def test_finished_stages_are_published_when_a_later_stage_fails(tmp_path, ingested_once):
    folder, _, other = ingested_once
    before = _fingerprint(folder)
    catalog = _ingest_catalog(folder, other, k_core=2)
    catalog["params:item_text"] = dataclasses.replace(
        catalog.load("params:item_text"), model=str(save_tiny_llama(tmp_path / "tiny")), pca_dim=4
    )
    pipeline = ingest_pipeline() + _failing_at(item_text_pipeline(), "summarize_item_text")
    with pytest.raises(RuntimeError, match="injected failure"):
        _run_with_hooks(pipeline, catalog)
    after = _fingerprint(folder)
    # ingest finished and is the new run's; item_text published nothing.
    assert after["samples"] != before["samples"]
    assert not {"item_descriptions", "item_embeddings", "retrieved_histories"} & set(
        after["tables"]
    )
    assert not (folder / "item_text_summary.json").exists()


def test_the_database_file_alone_holds_every_table(tmp_path, ingested_once):
    folder, _, _ = ingested_once
    assert not (folder / "db.duckdb.wal").exists()
    copy = tmp_path / "copy.duckdb"
    shutil.copy(folder / "db.duckdb", copy)
    connection = duckdb.connect(str(copy), read_only=True)
    try:
        counts = {t: connection.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                  for t in INGEST_TABLES}  # fmt: skip
    finally:
        connection.close()
    assert all(count > 0 for count in counts.values()), counts


def test_identical_reruns_do_not_grow_the_database(ingested_once):
    folder, source, _ = ingested_once
    sizes = []
    for _ in range(4):
        _run_with_hooks(ingest_pipeline(), _ingest_catalog(folder, source, k_core=2))
        sizes.append((folder / "db.duckdb").stat().st_size)
    # DuckDB reuses the blocks of replaced tables after a checkpoint: the file may
    # alternate between two sizes, but it must not keep growing.
    assert max(sizes[2:]) <= max(sizes[:2]), sizes


def test_a_second_run_on_the_same_database_is_refused_at_once(ingested_once):
    folder, source, _ = ingested_once
    with database_held_by_another_process(folder / "db.duckdb") as pid:
        catalog = _ingest_catalog(folder, source, k_core=2)
        with pytest.raises(Exception, match=rf"another run holds .*db\.duckdb \(pid {pid}\)"):
            _run_with_hooks(ingest_pipeline(), catalog)
        assert not STAGED_OUTPUTS.active
    assert json.loads((folder / "ingest_summary.json").read_text())["users"] > 0


def test_pending_tables_of_a_killed_run_are_dropped_by_the_next_run(ingested_once):
    folder, source, _ = ingested_once
    # What `kill -9` in the middle of a stage leaves behind.
    connection = duckdb.connect(str(folder / "db.duckdb"))
    connection.execute("CREATE TABLE samples__pending AS SELECT 1 AS x")
    connection.close()
    before = _fingerprint(folder)
    assert "samples__pending" in before["tables"]

    _run_with_hooks(ingest_pipeline(), _ingest_catalog(folder, source, k_core=2))

    after = _fingerprint(folder)
    assert "samples__pending" not in after["tables"]
    assert after["samples"] == before["samples"]


def test_runners_that_run_nodes_concurrently_are_refused(ingested_once):
    folder, source, _ = ingested_once
    before = _fingerprint(folder)
    with pytest.raises(Exception, match="SequentialRunner only"):
        _run_with_hooks(
            ingest_pipeline(),
            _ingest_catalog(folder, source, k_core=2),
            {"runner": "<kedro.runner.thread_runner.ThreadRunner object at 0x1>"},
        )
    assert _fingerprint(folder) == before
