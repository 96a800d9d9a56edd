"""`kedro run --pipeline full`, then `kedro run --pipeline predict`, as a user types them,
in a scratch project on the fixture world with a tiny random Llama."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from reclora_pipeline.workspace import make_workspace, run_kedro
from tests.predict.conftest import BATCH_SIZE, _overrides
from tests.sources import WRITERS, small_world
from tests.tiny_models import save_tiny_llama

pytestmark = pytest.mark.slow
DATABASE = "data/03_primary/reclora.duckdb"
PREDICTIONS = "data/07_model_output/predictions.parquet"


def _kedro(workspace: Path, *args: str):
    # A guard against a hung run, not a speed test.
    return run_kedro(workspace, *args, timeout=1200)


def _query(workspace: Path, sql: str) -> pd.DataFrame:
    connection = duckdb.connect(str(workspace / DATABASE), read_only=True)
    try:
        return connection.sql(sql).df()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A scratch project after `kedro run --pipeline full` on the fixture world."""
    root = tmp_path_factory.mktemp("predict_project")
    workspace = make_workspace(root / "project")
    parameters = _overrides(root)
    parameters["ingest"] = {"format": "ml-1m", "k_core": 2, "min_history": 3, "max_history": 4,
                            "path": str(WRITERS["ml-1m"](root / "src", small_world()))}  # fmt: skip
    parameters["item_text"] = {"pca_dim": 4, "k_text": 3, "model": str(
        save_tiny_llama(root / "tiny", extra_words=["Yes", "No", "."]))}  # fmt: skip
    # The lens is SIM searching more history than ingest keeps (ingest.max_history = 4), so
    # predict gathers the longer history the lens reads.
    parameters["ctr_lens"] = {"crm": "sim", "k_crm": 5, "crm_retrieval": "semantic",
                              "lifelong_max_history": 200,
                              "training": {"max_epochs": 2, "batch_size": 16, "progress": False}}  # fmt: skip
    (workspace / "conf/local/parameters.yml").write_text(yaml.safe_dump(parameters))
    result = _kedro(workspace, "run", "--pipeline", "full")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return workspace


def test_predict_after_full_scores_the_test_rows_as_the_evaluation(project, tmp_path):
    test_rows = _query(
        project,
        "SELECT f.sample_id, u.source_user_id AS user_id, i.source_item_id AS item_id, s.timestamp "
        "FROM few2many_samples f JOIN samples s USING (sample_id) JOIN users u "
        "ON u.user_id = f.user_id JOIN items i ON i.item_id = f.item_id "
        "WHERE f.subset = 'test' ORDER BY f.sample_id DESC",
    )
    candidates = tmp_path / "candidates.csv"
    test_rows.drop(columns="sample_id").to_csv(candidates, index=False)
    result = _kedro(project, "run", "--pipeline", "predict", "--params",
                    f"predict.candidates={candidates}")  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    written = pd.read_parquet(project / PREDICTIONS)
    table = _query(project, "SELECT * FROM predictions ORDER BY row")
    pd.testing.assert_frame_equal(written, table, check_dtype=False)
    assert written[["user_id", "item_id", "timestamp"]].to_numpy().tolist() == (
        test_rows[["user_id", "item_id", "timestamp"]].to_numpy().tolist()
    )
    evaluation = _query(project, "SELECT * FROM predictions_reclora").set_index("sample_id")
    expected = evaluation.probability.loc[test_rows.sample_id].to_numpy()
    np.testing.assert_allclose(written.score.to_numpy(), expected, rtol=0, atol=1e-6)
    assert len(written) == _overrides(tmp_path)["few2many"]["n_test"] and len(written) > BATCH_SIZE


def test_a_failed_predict_run_keeps_the_last_good_outputs(project, tmp_path):
    before = (project / PREDICTIONS).read_bytes()
    result = _kedro(project, "run", "--pipeline", "predict")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "predict.candidates=None is not allowed" in output and "Traceback" not in output

    # A run that fails in its last node: the outputs of its first nodes are not published.
    rows_before = _query(project, "SELECT count(*) AS n FROM prediction_rows").n[0]
    candidates = tmp_path / "latest.csv"
    candidates.write_text("user_id,item_id\n1,1\n")
    arm_file = project / "data/06_models/adapters/reclora/arm.json"
    arm_file.write_text(arm_file.read_text().replace('"fingerprint": "', '"fingerprint": "00'))
    result = _kedro(project, "run", "--pipeline", "predict", "--params",
                    f"predict.candidates={candidates}")  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "AdapterBaseModelError: adapter_reclora" in output, output[-3000:]
    assert (project / PREDICTIONS).read_bytes() == before
    assert _query(project, "SELECT count(*) AS n FROM prediction_rows").n[0] == rows_before != 1
