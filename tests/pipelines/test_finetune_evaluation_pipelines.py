"""few2many -> finetune -> evaluation on the fixture world with a tiny random Llama."""

from __future__ import annotations

import json

import pytest
from kedro.runner import SequentialRunner

from reclora_pipeline.errors import UserInputError
from reclora_pipeline.evaluation.comparison import PREDICTED_MODELS
from reclora_pipeline.finetune import launch
from reclora_pipeline.finetune.request import FinetuneRequest, build_request
from reclora_pipeline.finetune.run import user_dim
from reclora_pipeline.pipelines.evaluation import create_pipeline as evaluation_pipeline
from reclora_pipeline.pipelines.few2many import create_pipeline as few2many_pipeline
from reclora_pipeline.pipelines.finetune import create_pipeline as finetune_pipeline

FEW2MANY = {"n_train": 16, "n_valid": 6, "n_test": 6}
TRAINED = ("reclora", "vanilla_lora", "reclora_no_lens", "tallrec", "reclora_no_few2many")
MAX_LENGTH = 128


def _finetune(tmp_path, **overrides):
    return {
        "training": {"epochs": 1, "micro_batch_size": 4, "gradient_accumulation_steps": 1,
                     "engine": "torch", "eval_batch_size": 4, "max_length": MAX_LENGTH,
                     "checkpoint_folder": str(tmp_path / "ckpt")},
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
        finetune=_finetune(
            tmp_path, ablations=["reclora_no_lens", "tallrec", "reclora_no_few2many"]
        ),
        evaluation={"n_bootstrap": 50, "batch_size": 4},
    )
    SequentialRunner().run(few2many_pipeline() + finetune_pipeline(), catalog)
    return catalog


def test_every_arm_trains_and_evaluation_writes_the_contract(trained, tmp_path):
    catalog = trained
    model = catalog.load("language_model")["name_or_path"]
    for arm in TRAINED:
        report = catalog.load(f"finetune_report_{arm}")
        assert report["trained"] and report["engine"].startswith("torch")
        # What evaluation reads to score with the same base model and prompt length.
        assert (report["model"], report["max_length"]) == (model, MAX_LENGTH)
        assert (catalog.load(f"adapter_{arm}") / "arm.json").is_file()
    assert catalog.load("finetune_report_reclora_no_retriever") == {
        "arm": "reclora_no_retriever",
        "trained": False,
    }
    # One zero-shot valid pass per prompt column the trained arms read (tallrec reads the
    # recency prompts).
    zero_shot = catalog.load("zero_shot_valid")
    assert set(zero_shot["valid_auc"]) == {"prompt", "recency_prompt"}
    assert zero_shot["n_valid"] == FEW2MANY["n_valid"]
    column = {"tallrec": "recency_prompt"}
    for arm in TRAINED:
        report = catalog.load(f"finetune_report_{arm}")
        assert report["zero_shot_valid_auc"] == zero_shot["valid_auc"][column.get(arm, "prompt")]
        assert report["compute"]["precision"] in ("fp32", "bf16")
        assert report["compute"]["torch_threads"] >= 1
        assert 0 <= report["padding_share"]["length_sorted"] <= report["padding_share"]["shuffled"]

    SequentialRunner().run(evaluation_pipeline(), catalog)

    metrics = catalog.load("metrics")
    assert set(metrics["models"]) == {
        "zero_shot", *TRAINED, "lens_readout", "din", "sim", "deepfm",
    }  # fmt: skip
    test_users = catalog.load("few2many_samples").df().query("subset == 'test'").user_id.nunique()
    for entry in metrics["models"].values():
        assert set(entry) >= {"auc", "logloss", "accuracy", "n", "auc_ci_low", "auc_ci_high"}
        assert entry["n"] == FEW2MANY["n_test"] and entry["n_users"] == test_users
    assert metrics["bootstrap_unit"] == "user"
    assert {"reclora - lens_readout", "reclora - tallrec", "reclora - reclora_no_few2many"} <= set(
        metrics["comparisons"]
    )
    assert {"mlflow_tracking_uri", "mlflow_run_id"} <= set(metrics)
    assert {"precision", "torch_threads", "cpu", "amx"} <= set(metrics["compute"])
    assert "reclora - vanilla_lora" in metrics["comparisons"]
    assert "| reclora |" in catalog.load("metrics_table").replace("**", "")
    assert catalog.load("predictions_reclora_no_retriever").count() == 0
    for figure in ("roc_curves", "reliability_curves", "auc_by_history", "gate_heatmap"):
        assert catalog.load(f"{figure}_plot").startswith(b"\x89PNG")
    gates = catalog.load("gate_weights")
    assert len(gates["layers"]) == 4 and len(gates["weights"][0]) == 2


def test_no_few2many_reads_the_same_rows_through_the_few_row_lens(trained):
    catalog = trained
    rows = catalog.load("few2many_samples").df().set_index("sample_id")
    seen = catalog.load("few2many_samples_few_shot_lens").df().set_index("sample_id")
    assert list(seen.columns) == list(rows.columns) and sorted(seen.index) == sorted(rows.index)
    seen = seen.loc[rows.index]
    assert (seen.prompt == rows.prompt).all() and (seen.label == rows.label).all()
    # Another CRM (trained on the 16 train rows only) describes the users.
    assert not (seen.crm_probability == rows.crm_probability).all()
    assert {len(vector) for vector in seen.user_repr} == {len(rows.user_repr.iloc[0])}
    report = catalog.load("few_shot_lens_report")
    assert report["trained"] and report["crm"] == "din"
    assert report["rows"] == {name: FEW2MANY[f"n_{name}"] for name in ("train", "valid", "test")}


def test_stages_are_namespaced_and_evaluation_reads_only_its_own_parameters():
    finetune, evaluation = finetune_pipeline(), evaluation_pipeline()
    assert "finetune.finetune_reclora" in {n.name for n in finetune.nodes}
    assert {"evaluation.score_zero_shot", "evaluation.compare_models"} <= {
        n.name for n in evaluation.nodes
    }
    assert {i for i in evaluation.inputs() if i.startswith("params:")} == {"params:evaluation"}
    assert "language_model" not in evaluation.inputs()


def test_scoring_node_rescores_from_the_persisted_adapter(trained):
    catalog = trained
    SequentialRunner().run(evaluation_pipeline().only_nodes("evaluation.score_reclora"), catalog)
    first = catalog.load("predictions_reclora").df()
    SequentialRunner().run(evaluation_pipeline().only_nodes("evaluation.score_reclora"), catalog)
    again = catalog.load("predictions_reclora").df()
    assert len(first) == FEW2MANY["n_test"]
    assert (first.probability.to_numpy() == again.probability.to_numpy()).all()


def test_test_rows_without_labels_are_a_clear_error(trained):
    catalog = trained
    scoring = [f"evaluation.score_{name}" for name in PREDICTED_MODELS]
    SequentialRunner().run(evaluation_pipeline().only_nodes(*scoring), catalog)
    table = catalog.load("few2many_samples")
    table.connection.execute(
        f"UPDATE {table.sql_name} SET label = NULL WHERE subset = 'test' AND sample_id = "
        f"(SELECT min(sample_id) FROM {table.sql_name} WHERE subset = 'test')"
    )
    with pytest.raises(UserInputError, match=r"test subset has 1 rows without a label"):
        SequentialRunner().run(
            evaluation_pipeline().only_nodes("evaluation.compare_models"), catalog
        )


def test_adapter_from_another_base_model_is_a_clear_error(trained, tmp_path):
    catalog = trained
    vanilla = catalog.load("adapter_vanilla_lora")
    arm_file = vanilla / "arm.json"
    payload = json.loads(arm_file.read_text())
    payload["base_model"]["fingerprint"] = "0" * 16
    arm_file.write_text(json.dumps(payload))
    with pytest.raises(Exception, match="vanilla_lora|base model"):
        SequentialRunner().run(
            evaluation_pipeline().only_nodes("evaluation.score_vanilla_lora"), catalog
        )


def test_launcher_entry_point_trains_from_the_request_file(trained, tmp_path):
    catalog = trained
    rows = catalog.load("few2many_samples").arrow()
    request = build_request(
        "vanilla_lora",
        catalog.load("params:finetune"),
        catalog.load("language_model")["name_or_path"],
        n_users=catalog.load("users").count(),
        user_dim=user_dim(rows),
    )
    run_dir = tmp_path / "launch"
    launch.write_request(run_dir, request, rows)
    # Every launched process reads back the very request the node built.
    saved = json.loads((run_dir / launch.REQUEST_FILE).read_text())
    assert FinetuneRequest.from_dict(saved) == request
    launch.main(["--run-dir", str(run_dir), "--local_rank=0"])
    report = json.loads((run_dir / launch.REPORT_FILE).read_text())
    assert report["arm"] == "vanilla_lora" and report["n_train"] == FEW2MANY["n_train"]
    assert (run_dir / launch.ADAPTER_FOLDER / "arm.json").is_file()
