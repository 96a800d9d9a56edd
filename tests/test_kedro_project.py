"""The Kedro project as users drive it: `kedro run` in a scratch copy of the project.

Runs on the real embedded MovieLens-100K. Each `kedro` call is a subprocess,
so these tests take a few seconds each.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from reclora_pipeline.pipeline_registry import STAGES
from reclora_pipeline.pipelines.ingest.pipeline import INGEST_TABLES
from reclora_pipeline.workspace import make_workspace, run_kedro
from tests.database_holder import database_held_by_another_process
from tests.sources import WRITERS, small_world

pytestmark = pytest.mark.slow


def _kedro_ok(workspace: Path, *args: str) -> str:
    # A guard against a hung run, not a speed test: generous for a slow or busy CPU.
    result = run_kedro(workspace, *args, timeout=2400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout + result.stderr


def _fingerprints(workspace: Path) -> dict[str, str]:
    """A content hash of every ingest table and the summary file."""
    connection = duckdb.connect(str(workspace / "data/03_primary/reclora.duckdb"), read_only=True)
    try:
        prints = {
            table: connection.execute(
                f"SELECT count(*) || ':' || sum(hash(t::VARCHAR)) FROM {table} t"
            ).fetchall()[0][0]
            for table in INGEST_TABLES
        }
    finally:
        connection.close()
    prints["summary"] = (workspace / "data/08_reporting/ingest_summary.json").read_text()
    return prints


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    """A workspace after `kedro run --pipeline ingest` on the embedded default."""
    workspace = make_workspace(tmp_path_factory.mktemp("project"))
    _kedro_ok(workspace, "run", "--pipeline", "ingest")
    return workspace


def test_ingest_on_the_embedded_movielens_100k(ingested):
    import json

    summary = json.loads((ingested / "data/08_reporting/ingest_summary.json").read_text())
    assert set(summary) == {
        "users",
        "items",
        "interactions",
        "positives",
        "train",
        "valid",
        "test",
        "samples",
    }
    # MovieLens-100K: 943 users each with >= 20 ratings, so the 5-core keeps every user.
    assert summary["users"] == 943
    assert 1_300 <= summary["items"] <= 1_682
    assert 99_000 <= summary["interactions"] <= 100_000
    assert summary["train"] + summary["valid"] + summary["test"] == summary["interactions"]
    assert summary["train"] == pytest.approx(0.8 * summary["interactions"], rel=0.02)
    # Each user loses exactly their first 5 interactions to the history filter.
    assert summary["samples"] == summary["interactions"] - 5 * summary["users"]
    assert 0.5 < summary["positives"] / summary["interactions"] < 0.6


def test_rerunning_one_node_reuses_persisted_inputs(ingested):
    before = _fingerprints(ingested)
    output = _kedro_ok(ingested, "run", "--nodes", "ingest.build_history_samples")
    assert "Completed node: ingest.build_history_samples" in output
    assert "read_raw_tables" not in output
    assert _fingerprints(ingested) == before


def test_bad_input_stops_clearly_and_keeps_the_last_good_run(ingested, tmp_path):
    before = _fingerprints(ingested)
    folder = WRITERS["ml-latest"](tmp_path / "bad", small_world())
    lines = (folder / "ratings.csv").read_text().splitlines()
    lines[2] = "1,2,four,1000300"
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")

    result = run_kedro(
        ingested,
        "run",
        "--pipeline",
        "ingest",
        "--params",
        f"ingest.format=ml-latest,ingest.path={folder}",
        timeout=600,
    )

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ratings.csv, line 3, column 'rating': value 'four' is not a number" in output
    assert "Traceback" not in output and "╭" not in output  # a message, not a stack trace
    assert _fingerprints(ingested) == before


def test_a_failure_in_a_middle_node_keeps_every_table_of_the_last_good_run(ingested, tmp_path):
    before = _fingerprints(ingested)
    folder = WRITERS["ml-1m"](tmp_path / "ml-1m", small_world())
    # No user of the small world has 50 ratings: the k-core node fails on the data, after
    # the first node saved its three tables.
    result = run_kedro(
        ingested, "run", "--pipeline", "ingest", "--params",
        f"ingest.format=ml-1m,ingest.path={folder},ingest.k_core=50",
        timeout=600,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Completed node: ingest.read_raw_tables" in result.stdout + result.stderr
    assert "the 50-core of the interactions is empty" in result.stderr
    assert _fingerprints(ingested) == before
    assert not (ingested / "data/03_primary/reclora.duckdb.wal").exists()


def test_a_second_run_is_refused_at_start_in_one_line(ingested):
    with database_held_by_another_process(ingested / "data/03_primary/reclora.duckdb") as pid:
        result = run_kedro(ingested, "run", "--pipeline", "ingest", timeout=600)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    expected = f"another run holds data/03_primary/reclora.duckdb (pid {pid})"
    assert expected in output
    assert "Running node" not in output and "Traceback" not in output


def test_other_format_through_params(ingested, tmp_path):
    import json

    folder = WRITERS["ml-latest"](tmp_path / "latest", small_world())
    _kedro_ok(
        ingested,
        "run",
        "--pipeline",
        "ingest",
        "--params",
        f"ingest.format=ml-latest,ingest.path={folder},ingest.k_core=2",
    )
    summary = json.loads((ingested / "data/08_reporting/ingest_summary.json").read_text())
    assert summary["users"] == 8 and summary["interactions"] <= 72


def test_full_pipeline_runs_from_the_command_line(ingested):
    # `full` is a composition of stages; kedro must resolve it through the registry.
    # The real data and model at a small size keep this test short: the 60-core of
    # ML-100K (428 users, 461 items, 57k samples, against 943, 1349 and 95k), one CRM
    # epoch and a few LLM samples. The defaults are larger.
    small = (
        "ingest.k_core=60,ctr_lens.training.max_epochs=1,few2many.n_train=16,"
        "few2many.n_valid=16,few2many.n_test=48,finetune.training.epochs=1,"
        "evaluation.n_bootstrap=100"
    )
    output = _kedro_ok(ingested, "run", "--pipeline", "full", "--params", small)
    assert "Completed node: ingest.read_raw_tables" in output
    assert "Completed node: ingest.summarize_ingest" in output
    # item_text on the real embedded model: every sample gets histories; few2many renders
    # the prompts of the rows it selects.
    import json

    ingest = json.loads((ingested / "data/08_reporting/ingest_summary.json").read_text())
    item_text = json.loads((ingested / "data/08_reporting/item_text_summary.json").read_text())
    assert item_text["samples"] == ingest["samples"]
    assert item_text["items_embedded"] == ingest["items"]
    assert item_text["embedding_dim"] == min(512, ingest["items"])  # PCA to at most 512
    few2many = json.loads((ingested / "data/08_reporting/few2many_summary.json").read_text())
    for subset in few2many.values():
        assert 100 < subset["median_prompt_tokens"] <= subset["max_prompt_tokens"] <= 512
    # The CRMs, the fine-tuned arms (DeepSpeed on CPU) and the comparison table.
    crm = json.loads((ingested / "data/08_reporting/ctr_lens_metrics.json").read_text())
    assert all(entry["test_auc"] > 0.6 for entry in crm.values())
    for arm in ("reclora", "vanilla_lora"):
        report = json.loads(
            (ingested / f"data/07_model_output/finetune_report_{arm}.json").read_text()
        )
        assert report["trained"]
        assert report["engine"].startswith("deepspeed-zero2"), [
            line for line in output.splitlines() if "DeepSpeed" in line
        ]
        assert (ingested / f"data/06_models/adapters/{arm}/arm.json").is_file()
    metrics = json.loads((ingested / "data/08_reporting/metrics.json").read_text())
    assert {"zero_shot", "vanilla_lora", "reclora", "din", "sim"} <= set(metrics["models"])
    assert all(entry["n"] == 48 for entry in metrics["models"].values())
    assert metrics["mlflow_run_id"] and metrics["mlflow_tracking_uri"].startswith("sqlite")
    assert (ingested / "data/08_reporting/roc_curves.png").is_file()
    timings = json.loads((ingested / "data/08_reporting/run_timings.json").read_text())
    assert set(timings["stages"]) == set(STAGES)


# One bad value or key per stage, each as a user would type it.
BAD_SETTINGS = {
    "ingest": ("ingest.k_core=0", "ingest.k_core=0 is not allowed"),
    "item_text": (
        "item_text.k_txt=3",
        "item_text.k_txt is not a setting; did you mean item_text.k_text?",
    ),
    "ctr_lens": ("ctr_lens.crm=xgboost", "ctr_lens.crm='xgboost' is not allowed"),
    "few2many": ("few2many.strategy=best", "few2many.strategy='best' is not allowed"),
    "finetune": ("finetune.lora.n_experts=0", "finetune.lora.n_experts=0 is not allowed"),
    "evaluation": ("evaluation.ci_level=2", "evaluation.ci_level=2.0 is not allowed"),
}


@pytest.mark.parametrize("stage", list(BAD_SETTINGS))
def test_a_bad_setting_of_any_stage_stops_full_before_any_node(ingested, stage):
    before = _fingerprints(ingested)
    override, message = BAD_SETTINGS[stage]
    result = run_kedro(ingested, "run", "--pipeline", "full", "--params", override, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output
    assert "Running node" not in output and "Traceback" not in output
    assert _fingerprints(ingested) == before


def test_pipeline_registry_lists_every_stage_and_full(monkeypatch):
    from kedro.framework.project import configure_project

    configure_project("reclora_pipeline")
    from reclora_pipeline.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    stages = [name for name in STAGES if name in pipelines]
    assert stages[0] == "ingest"
    assert pipelines["__default__"] is pipelines["full"]
    full_nodes = {node.name for node in pipelines["full"].nodes}
    assert full_nodes == {node.name for name in stages for node in pipelines[name].nodes}
