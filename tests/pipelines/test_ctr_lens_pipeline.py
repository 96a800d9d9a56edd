"""ingest + item_text + ctr_lens on fixture data, through the project's catalog."""

from __future__ import annotations

import pytest
from kedro.runner import SequentialRunner

from reclora_pipeline.ctr.metrics import auc
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.pipelines.ctr_lens import create_pipeline as ctr_lens_pipeline
from reclora_pipeline.pipelines.ingest import create_pipeline as ingest_pipeline
from reclora_pipeline.pipelines.item_text import create_pipeline as item_text_pipeline
from tests.pipelines.catalog import project_parameters, temporary_catalog
from tests.sources import WRITERS
from tests.tiny_models import save_tiny_llama


def _parameters(tmp_path, world, **ctr_lens):
    params = project_parameters()
    params["ingest"].update(
        format="ml-1m", path=str(WRITERS["ml-1m"](tmp_path / "src", world)), k_core=2, min_history=3
    )
    params["item_text"].update(
        model=str(save_tiny_llama(tmp_path / "tiny")), pca_dim=4, k_text=3, k_crm=5
    )
    params["ctr_lens"]["training"].update(max_epochs=2, batch_size=16, progress=False)
    params["ctr_lens"].update(ctr_lens)
    return params


def test_ctr_lens_trains_every_crm_and_writes_user_representations(tmp_path, world, database):
    catalog = temporary_catalog(tmp_path, _parameters(tmp_path, world))

    SequentialRunner().run(ingest_pipeline() + item_text_pipeline() + ctr_lens_pipeline(), catalog)

    metrics = catalog.load("ctr_lens_metrics")
    assert set(metrics) == {"din", "sim", "deepfm"}
    for values in metrics.values():
        assert {"valid_auc", "test_auc", "test_logloss", "n_test", "epochs"} <= set(values)
        assert 1 <= values["epochs"] <= 2 and values["n_test"] > 0
    user_repr = catalog.load("user_repr").df()
    assert len(user_repr) == catalog.load("samples").count()
    assert user_repr.sample_id.is_unique
    assert {len(vector) for vector in user_repr.user_repr} == {256}
    predictions = catalog.load("crm_predictions").df()
    assert len(predictions) == len(user_repr) and predictions.sample_id.is_unique
    for name in ("din", "sim", "deepfm"):
        assert predictions[name].between(0, 1).all()
    # The stored predictions are the ones the metrics were computed from.
    test_rows = catalog.load("samples").df().query("split == 'test'")[["sample_id", "label"]]
    scored = test_rows.merge(predictions, on="sample_id")
    assert auc(scored.label.to_numpy(), scored.din.to_numpy()) == pytest.approx(
        metrics["din"]["test_auc"], abs=1e-6
    )


def test_unknown_crm_fails_before_training(tmp_path, world, database):
    catalog = temporary_catalog(tmp_path, _parameters(tmp_path, world, crm="xgboost"))
    with pytest.raises(
        ParameterError, match=r"ctr_lens.crm='xgboost'.*accepted values: \['din', 'sim', 'deepfm'\]"
    ):
        SequentialRunner().run(
            ingest_pipeline()
            + item_text_pipeline()
            + ctr_lens_pipeline().only_nodes("fit_ctr_vocabulary"),
            catalog,
        )
