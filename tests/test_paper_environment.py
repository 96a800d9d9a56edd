"""conf/paper: the paper's MovieLens-1M setting, merged over conf/base as `--env paper` does."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from kedro.config import OmegaConfigLoader

from reclora_pipeline.ctr.registry import CTR_MODELS
from reclora_pipeline.item_text.parameters import validate_parameters
from reclora_pipeline.pipelines.ctr_lens.nodes import _train_config, check_ctr_parameters
from reclora_pipeline.pipelines.ctr_lens.pipeline import TRAINED_CRMS
from reclora_pipeline.pipelines.few2many.nodes import check_few2many_parameters
from reclora_pipeline.pipelines.finetune.nodes import check_finetune_parameters, training_settings
from reclora_pipeline.settings import CONFIG_LOADER_ARGS

PROJECT = Path(__file__).resolve().parents[1]
CONF = PROJECT / "conf"
VICUNA_7B_HIDDEN_SIZE = 4096

# Kedro's own resolvers; settings.py silences this outside pytest.
pytestmark = pytest.mark.filterwarnings("ignore:register_new_resolver")


def _parameters(env: str) -> dict[str, Any]:
    loader = OmegaConfigLoader(str(CONF), **{**CONFIG_LOADER_ARGS, "default_run_env": env})
    return loader["parameters"]


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return _parameters("base")


@pytest.fixture(scope="module")
def paper() -> dict[str, Any]:
    return _parameters("paper")


def _key_paths(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in tree.items():
        yield (*prefix, key)
        if isinstance(value, Mapping):
            yield from _key_paths(value, (*prefix, key))


def test_every_paper_key_exists_in_base(base):
    own = yaml.safe_load((CONF / "paper" / "parameters.yml").read_text())
    unknown = []
    for path in _key_paths(own):
        parent = base
        for key in path[:-1]:
            parent = parent[key]
        # An empty mapping in base is free-form (e.g. ctr_lens.models.din.options).
        if path[-1] not in parent and parent != {}:
            unknown.append(".".join(path))
    assert not unknown, f"keys not in conf/base (typos?): {unknown}"


def test_effective_batch_is_the_papers_256(paper):
    params = paper["finetune"]
    settings = training_settings(params)
    assert check_finetune_parameters(params) == settings
    assert settings.effective_batch_size(world_size=params["num_gpus"]) == 256
    assert params["launcher"] == "deepspeed" and settings.engine == "deepspeed"
    assert params["num_gpus"] == 8 and params["hostfile"] is None


def test_paper_training_values(paper):
    finetune = paper["finetune"]
    settings = training_settings(finetune)
    assert settings.lr == pytest.approx(1e-3)
    assert settings.epochs == 5 and settings.bf16 and settings.weight_decay == 0
    assert finetune["max_length"] == 2048
    assert finetune["lora"]["n_experts"] == 16
    assert (finetune["lora"]["r"], finetune["lora"]["alpha"]) == (8, 16)
    assert (PROJECT / settings.deepspeed_config).is_file()
    assert paper["evaluation"]["bf16"] is True


def test_paper_data_values(paper):
    assert paper["ingest"]["format"] == "ml-1m" and paper["ingest"]["k_core"] == 5
    few2many = paper["few2many"]
    check_few2many_parameters(few2many)
    assert (few2many["n_train"], few2many["n_test"]) == (70_000, 30_000)
    item_text = paper["item_text"]
    validate_parameters(item_text, paper["ingest"]["format"], VICUNA_7B_HIDDEN_SIZE)
    assert (item_text["pca_dim"], item_text["k_text"], item_text["similarity"]) == (
        512,
        10,
        "cosine",
    )


def test_ctr_lens_settings_are_accepted(paper):
    params = paper["ctr_lens"]
    check_ctr_parameters(params, TRAINED_CRMS)
    for name, model in params["models"].items():
        accepted = inspect.signature(CTR_MODELS[name]).parameters
        assert set(model["options"]) <= set(accepted), name
        _train_config(params, name)
