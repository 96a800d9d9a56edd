"""few2many -> finetune -> evaluation on the fixture world with a tiny random Llama."""

from __future__ import annotations

import json

import pytest
from kedro.runner import SequentialRunner

from reclora_pipeline.errors import ParameterError, UserInputError
from reclora_pipeline.finetune import launch
from reclora_pipeline.pipelines.evaluation import create_pipeline as evaluation_pipeline
from reclora_pipeline.pipelines.few2many import create_pipeline as few2many_pipeline
from reclora_pipeline.pipelines.finetune import create_pipeline as finetune_pipeline

FEW2MANY = {"n_train": 16, "n_valid": 6, "n_test": 6}


def _finetune(tmp_path, **overrides):
    return {
        "epochs": 1, "micro_batch_size": 4, "gradient_accumulation_steps": 1, "engine": "torch",
        "eval_batch_size": 4, "max_length": 128, "checkpoint_folder": str(tmp_path / "ckpt"),
        "lora": {"n_experts": 2, "r": 2, "alpha": 4.0, "dropout": 0.0,
                 "target_modules": ["q_proj", "v_proj"], "gate_hidden": 8, "gate_dropout": 0.1,
                 "temperature": 1.0, "mixing": "parameter", "routing": "soft", "top_k": 2},
        **overrides,
    }  # fmt: skip


@pytest.fixture
def trained(tmp_path, upstream, database):
    catalog = upstream.catalog(
        tmp_path,
        few2many=FEW2MANY,
        finetune=_finetune(tmp_path, ablations=["reclora_no_lens"]),
        evaluation={"n_bootstrap": 50, "batch_size": 4},
    )
    SequentialRunner().run(few2many_pipeline() + finetune_pipeline(), catalog)
    return catalog


def test_every_arm_trains_and_evaluation_writes_the_contract(trained, tmp_path):
    catalog = trained
    for arm in ("reclora", "vanilla_lora", "reclora_no_lens"):
        report = catalog.load(f"finetune_report_{arm}")
        assert report["trained"] and report["engine"].startswith("torch")
        assert (catalog.load(f"adapter_{arm}") / "arm.json").is_file()
    assert not catalog.load("finetune_report_reclora_no_retriever")["trained"]
    # Every arm starts as the base model (B = 0): the same zero-shot valid AUC.
    baselines = [
        catalog.load(f"finetune_report_{arm}")["zero_shot_valid_auc"]
        for arm in ("reclora", "vanilla_lora", "reclora_no_lens")
    ]
    assert baselines[0] == pytest.approx(baselines[1], abs=1e-6)
    assert baselines[0] == pytest.approx(baselines[2], abs=1e-6)

    SequentialRunner().run(evaluation_pipeline(), catalog)

    metrics = catalog.load("metrics")
    assert set(metrics["models"]) == {
        "zero_shot", "vanilla_lora", "reclora", "reclora_no_lens", "din", "sim", "deepfm"
    }  # fmt: skip
    for entry in metrics["models"].values():
        assert set(entry) >= {"auc", "logloss", "accuracy", "n", "auc_ci_low", "auc_ci_high"}
        assert entry["n"] == FEW2MANY["n_test"]
    assert {"mlflow_tracking_uri", "mlflow_run_id"} <= set(metrics)
    assert "reclora - vanilla_lora" in metrics["comparisons"]
    assert "| reclora |" in catalog.load("metrics_table").replace("**", "")
    for figure in ("roc_curves", "reliability_curves", "auc_by_history", "gate_heatmap"):
        assert catalog.load(f"{figure}_plot").startswith(b"\x89PNG")
    gates = catalog.load("gate_weights")
    assert len(gates["layers"]) == 4 and len(gates["weights"][0]) == 2


def test_scoring_node_rescores_from_the_persisted_adapter(trained):
    catalog = trained
    SequentialRunner().run(evaluation_pipeline().only_nodes("score_reclora"), catalog)
    first = catalog.load("predictions_reclora").df()
    SequentialRunner().run(evaluation_pipeline().only_nodes("score_reclora"), catalog)
    again = catalog.load("predictions_reclora").df()
    assert len(first) == FEW2MANY["n_test"]
    assert (first.probability.to_numpy() == again.probability.to_numpy()).all()


def test_test_rows_without_labels_are_a_clear_error(trained):
    catalog = trained
    scoring = [f"score_{name}" for name in ("zero_shot", "reclora", "vanilla_lora",
                                            "reclora_no_retriever", "reclora_no_lens")]  # fmt: skip
    SequentialRunner().run(evaluation_pipeline().only_nodes(*scoring), catalog)
    table = catalog.load("few2many_samples")
    table.connection.execute(
        f"UPDATE {table.sql_name} SET label = NULL WHERE subset = 'test' AND sample_id = "
        f"(SELECT min(sample_id) FROM {table.sql_name} WHERE subset = 'test')"
    )
    with pytest.raises(UserInputError, match=r"test subset has 1 rows without a label"):
        SequentialRunner().run(evaluation_pipeline().only_nodes("compare_models"), catalog)


def test_adapter_from_another_base_model_is_a_clear_error(trained, tmp_path):
    catalog = trained
    vanilla = catalog.load("adapter_vanilla_lora")
    arm_file = vanilla / "arm.json"
    payload = json.loads(arm_file.read_text())
    payload["base_model"]["fingerprint"] = "0" * 16
    arm_file.write_text(json.dumps(payload))
    with pytest.raises(Exception, match="vanilla_lora|base model"):
        SequentialRunner().run(evaluation_pipeline().only_nodes("score_vanilla_lora"), catalog)


def test_bad_finetune_settings_fail_before_training(tmp_path, upstream, database):
    catalog = upstream.catalog(
        tmp_path,
        few2many=FEW2MANY,
        finetune=_finetune(tmp_path, batch_size=6, deepspeed_config="missing.json"),
    )
    SequentialRunner().run(few2many_pipeline(), catalog)
    with pytest.raises(ParameterError, match="finetune.batch_size"):
        SequentialRunner().run(finetune_pipeline().only_nodes("finetune_reclora"), catalog)


def test_launcher_entry_point_trains_from_materialised_inputs(trained, tmp_path):
    catalog = trained
    params = catalog.load("params:finetune")
    rows = catalog.load("few2many_samples").arrow()
    run_dir = tmp_path / "launch"
    settings = {k: v for k, v in params.items() if k not in launch_keys()}
    launch.write_request(
        run_dir,
        {"arm": "vanilla_lora", "model": catalog.load("language_model")["name_or_path"],
         "n_users": 50, "settings": settings, "lora": params["lora"], "max_length": 128,
         "eval_batch_size": 4, "checkpoint_dir": None},
        rows,
    )  # fmt: skip
    launch.main(["--run-dir", str(run_dir), "--local_rank=0"])
    report = json.loads((run_dir / launch.REPORT_FILE).read_text())
    assert report["arm"] == "vanilla_lora" and report["n_train"] == FEW2MANY["n_train"]
    assert (run_dir / launch.ADAPTER_FOLDER / "arm.json").is_file()


def launch_keys():
    from reclora_pipeline.pipelines.finetune.nodes import PIPELINE_KEYS

    return PIPELINE_KEYS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        (["reclora_no_lens"], ["reclora_no_lens"]),
        ("reclora_no_lens+reclora_no_retriever", ["reclora_no_lens", "reclora_no_retriever"]),
        ("all", ["reclora_no_retriever", "reclora_no_lens"]),
    ],
)
def test_ablations_accept_the_command_line_forms(value, expected):
    from reclora_pipeline.pipelines.finetune.nodes import ablations

    assert ablations({"ablations": value}) == expected


def test_unknown_ablation_is_a_clear_error(tmp_path):
    from reclora_pipeline.pipelines.finetune.nodes import check_finetune_parameters
    from tests.pipelines.catalog import project_parameters

    params = {**project_parameters()["finetune"], "ablations": "reclora_no_gate"}
    with pytest.raises(ParameterError, match=r"finetune.ablations has \['reclora_no_gate'\]"):
        check_finetune_parameters(params)
