"""A session's trained workspace on the fixture world: upstream (shared with the pipeline
tests), then few2many, finetune and the evaluation's scores of the trained arms, once."""

from __future__ import annotations

import copy
import shutil

import pytest
from kedro.runner import SequentialRunner

from reclora_pipeline import duckdb_store
from reclora_pipeline.pipelines.evaluation import create_pipeline as evaluation_pipeline
from reclora_pipeline.pipelines.few2many import create_pipeline as few2many_pipeline
from reclora_pipeline.pipelines.finetune import create_pipeline as finetune_pipeline
from tests.pipelines.catalog import temporary_catalog
from tests.pipelines.conftest import Upstream, upstream  # noqa: F401 - the session fixture

# reclora and vanilla_lora always train; tallrec reads recency prompts, reclora_no_lens user ids.
SCORED_ARMS = ("reclora", "vanilla_lora", "tallrec", "reclora_no_lens")
# Scoring batches of the evaluation and of predict: equal, so the batches are the same.
BATCH_SIZE = 4


def _overrides(folder) -> dict[str, dict]:
    return {
        "few2many": {"n_train": 16, "n_valid": 6, "n_test": 6},
        "finetune": {
            "ablations": ["tallrec", "reclora_no_lens"],
            "training": {"epochs": 1, "micro_batch_size": 4, "gradient_accumulation_steps": 1,
                         "engine": "torch", "eval_batch_size": 4, "max_length": 128,
                         "checkpoint_folder": str(folder / "ckpt")},
            "lora": {"n_experts": 2, "r": 2, "alpha": 4.0, "dropout": 0.0,
                     "target_modules": ["q_proj", "v_proj"], "gate_hidden": 8},
        },
        "evaluation": {"n_bootstrap": 20, "batch_size": BATCH_SIZE},
        "predict": {"batch_size": BATCH_SIZE},
    }  # fmt: skip


@pytest.fixture(scope="session")
def trained(upstream, tmp_path_factory) -> Upstream:  # noqa: F811 - the imported fixture
    """The fixture world after every stage: adapters of SCORED_ARMS and their evaluation
    scores (``predictions_<arm>``); copy it with ``trained.catalog(tmp_path)``."""
    root = tmp_path_factory.mktemp("trained")
    parameters = copy.deepcopy(upstream.parameters)
    for group, values in _overrides(root).items():
        for key, value in values.items():
            if isinstance(value, dict):
                parameters[group][key] = {**parameters[group].get(key, {}), **value}
            else:
                parameters[group][key] = value
    folder = root / "outputs"
    shutil.copytree(upstream.folder, folder)
    catalog = temporary_catalog(folder, parameters)
    SequentialRunner().run(few2many_pipeline() + finetune_pipeline(), catalog)
    scoring = [f"evaluation.score_{arm}" for arm in SCORED_ARMS]
    SequentialRunner().run(evaluation_pipeline().only_nodes(*scoring), catalog)
    duckdb_store.close_all()  # the copies must see a closed, complete database file
    return Upstream(folder, parameters)
