"""The predict pipeline on the fixture world: the evaluation's scores for its test rows,
histories as of any time, and clear errors that write nothing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from kedro.runner import SequentialRunner

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.finetune.arms import check_arm
from reclora_pipeline.finetune.scoring_job import AdapterBaseModelError
from reclora_pipeline.pipeline_registry import register_pipelines
from reclora_pipeline.pipelines.predict import create_pipeline as predict_pipeline
from reclora_pipeline.predict.scoring import OUTPUT_COLUMNS
from tests.predict.conftest import SCORED_ARMS


def _source_ids(catalog, users, items) -> tuple[np.ndarray, np.ndarray]:
    """Dense user and item ids as the data set spells them."""
    user_ids = catalog.load("users").df().set_index("user_id").source_user_id
    item_ids = catalog.load("items").df().set_index("item_id").source_item_id
    return user_ids.loc[users].to_numpy(), item_ids.loc[items].to_numpy()


def _test_rows_file(catalog, path, seed=0) -> pd.DataFrame:
    """The evaluation's test rows as a candidates file (source ids, shuffled, one extra
    column); returns them with their sample ids, in file order."""
    rows = catalog.load("few2many_samples").df().query("subset == 'test'")
    stamps = catalog.load("samples").df().set_index("sample_id").timestamp
    users, items = _source_ids(catalog, rows.user_id, rows.item_id)
    frame = pd.DataFrame({"note": "x", "item_id": items, "user_id": users,
                          "timestamp": stamps.loc[rows.sample_id].to_numpy(),
                          "sample_id": rows.sample_id.to_numpy()})  # fmt: skip
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame.drop(columns="sample_id").to_parquet(path)
    return frame


def _predict(trained, tmp_path, **settings):
    catalog = trained.catalog(tmp_path / "run", predict=settings)
    SequentialRunner().run(predict_pipeline(), catalog)
    return catalog


@pytest.mark.parametrize("arm", SCORED_ARMS)
def test_the_test_rows_get_the_evaluations_scores(trained, tmp_path, database, arm):
    candidates = _test_rows_file(trained.catalog(tmp_path / "read"), tmp_path / "c.parquet")
    catalog = _predict(trained, tmp_path, candidates=str(tmp_path / "c.parquet"), arm=arm)

    table = catalog.load("predictions").df()
    assert tuple(table.columns) == OUTPUT_COLUMNS
    assert table.row.tolist() == list(range(len(candidates))) and (table.arm == arm).all()
    assert (table.user_id == candidates.user_id).all() and (
        table.item_id == candidates.item_id
    ).all()
    assert (table.timestamp == candidates.timestamp).all()
    pd.testing.assert_frame_equal(catalog.load("prediction_file"), table)
    evaluation = catalog.load(f"predictions_{arm}").df().set_index("sample_id").probability
    expected = evaluation.loc[candidates.sample_id].to_numpy()
    np.testing.assert_allclose(table.score.to_numpy(), expected, rtol=0, atol=1e-6)

    # The very prompt and gate input of each stored row.
    rows = catalog.load("prediction_rows").df().set_index("row").loc[table.row]
    stored = catalog.load("few2many_samples").df().set_index("sample_id").loc[candidates.sample_id]
    assert rows.prompt.tolist() == stored[check_arm(arm).prompt_column].tolist()
    np.testing.assert_allclose(np.stack(rows.user_repr), np.stack(stored.user_repr), atol=1e-6)
    assert (rows.history_length.to_numpy() == stored.history_length.to_numpy()).all()


def test_every_sample_gets_the_prompt_and_lens_vector_few2many_stored(trained, tmp_path, database):
    source = trained.catalog(tmp_path / "read")
    samples = source.load("samples").df()
    users, items = _source_ids(source, samples.user_id, samples.item_id)
    path = tmp_path / "all.csv"
    pd.DataFrame({"user_id": users, "item_id": items, "timestamp": samples.timestamp}).to_csv(
        path, index=False
    )
    catalog = _predict(trained, tmp_path, candidates=str(path))
    rows = catalog.load("prediction_rows").df().set_index("row").sort_index()
    rows.index = samples.sample_id.to_numpy()
    assert (rows.history_length.to_numpy() == samples.history_length.to_numpy()).all()
    # Prompts and lens vectors are stored for the Few2Many rows (every subset) only.
    stored = catalog.load("few2many_samples").df().set_index("sample_id")
    chosen = rows.loc[stored.index]
    assert chosen.prompt.tolist() == stored.prompt.tolist()
    np.testing.assert_allclose(np.stack(chosen.user_repr), np.stack(stored.user_repr), atol=1e-6)
    scores = catalog.load("predictions").df().score
    assert len(scores) == len(samples) and scores.between(0, 1).all()


def test_without_timestamps_rows_are_scored_as_of_the_latest_interaction(
    trained, tmp_path, database
):
    source = trained.catalog(tmp_path / "read")
    counts = source.load("interactions").df().groupby("user_id").size()
    users, items = _source_ids(source, counts.index[:3], [1, 2, 3])
    path = tmp_path / "latest.csv"
    pd.DataFrame({"user_id": users, "item_id": items}).to_csv(path, index=False)
    catalog = _predict(trained, tmp_path, candidates=str(path))
    table = catalog.load("predictions").df()
    assert table.timestamp.isna().all()
    max_history = source.load("source_info")["max_history"]
    assert table.history_length.tolist() == np.minimum(counts.iloc[:3], max_history).tolist()


def test_unknown_ids_stop_before_anything_is_written(trained, tmp_path, database):
    path = tmp_path / "bad.csv"
    path.write_text("user_id,item_id\n999999,1\n1,999999\n")
    catalog = trained.catalog(tmp_path / "run", predict={"candidates": str(path)})
    with pytest.raises(UserInputError, match=r"bad\.csv: 1 of 2 rows .*'999999' \(line 2\)"):
        SequentialRunner().run(predict_pipeline(), catalog)
    for name in ("prediction_candidates", "prediction_rows", "predictions", "prediction_file"):
        assert not catalog.exists(name), name


def test_an_arm_that_was_not_trained_is_refused_first(trained, tmp_path, database):
    catalog = trained.catalog(
        tmp_path / "run",
        predict={"candidates": str(tmp_path / "none.csv"), "arm": "reclora_no_retriever"},
    )
    with pytest.raises(
        UserInputError, match=r"arm 'reclora_no_retriever' was not trained .*finetune\.ablations"
    ):
        SequentialRunner().run(predict_pipeline(), catalog)


def test_missing_candidates_setting_is_a_clear_error(trained, tmp_path, database):
    catalog = trained.catalog(tmp_path / "run")
    with pytest.raises(UserInputError, match=r"predict\.candidates=None is not allowed"):
        SequentialRunner().run(predict_pipeline(), catalog)


def test_an_adapter_of_another_base_model_writes_no_predictions(trained, tmp_path, database):
    candidates = _test_rows_file(trained.catalog(tmp_path / "read"), tmp_path / "c.parquet")
    catalog = trained.catalog(tmp_path / "run", predict={"candidates": str(tmp_path / "c.parquet")})
    arm_file = catalog.load("adapter_reclora") / "arm.json"
    payload = json.loads(arm_file.read_text())
    payload["base_model"]["fingerprint"] = "0" * 16
    arm_file.write_text(json.dumps(payload))
    with pytest.raises(AdapterBaseModelError, match=r"adapter_reclora .* was not trained on "):
        SequentialRunner().run(predict_pipeline(), catalog)
    assert not catalog.exists("predictions") and not catalog.exists("prediction_file")
    assert len(candidates)


def test_predict_is_registered_apart_from_full_and_reads_only_its_parameters():
    pipelines = register_pipelines()
    predict = pipelines["predict"]
    assert {node.name for node in predict.nodes} == {
        "predict.read_candidates", "predict.build_prediction_rows", "predict.score_candidates",
    }  # fmt: skip
    assert not {node.name for node in predict.nodes} & {
        node.name for node in pipelines["full"].nodes
    }
    assert {name for name in predict.inputs() if name.startswith("params:")} == {"params:predict"}
    assert predict.outputs() == {"predictions", "prediction_file"}
