"""conf/paper: the paper's MovieLens-1M setting, merged over conf/base as `--env paper` does."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from kedro.config import OmegaConfigLoader

from reclora_pipeline.ctr.settings import TRAINED_CRMS
from reclora_pipeline.item_text.embeddings import check_pca_dim
from reclora_pipeline.settings import CONFIG_LOADER_ARGS
from reclora_pipeline.stage_settings import STAGE_SETTINGS, parse_groups

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


@pytest.fixture(scope="module")
def settings(paper) -> dict[str, Any]:
    """Every stage's settings as a `--env paper` run parses them."""
    return parse_groups(paper, STAGE_SETTINGS)


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


def test_base_and_paper_parse(base, settings):
    assert set(parse_groups(base, STAGE_SETTINGS)) == set(STAGE_SETTINGS) == set(settings)


def test_effective_batch_is_the_papers_256(settings):
    finetune = settings["finetune"]
    training, launch = finetune.training, finetune.launch
    assert training.effective_batch_size(world_size=launch.num_gpus) == 256
    assert launch.launcher == "deepspeed" and training.engine == "deepspeed"
    assert launch.num_gpus == 8 and launch.hostfile is None


def test_paper_training_values(settings):
    finetune = settings["finetune"]
    training = finetune.training
    assert training.lr == pytest.approx(1e-3)
    assert training.epochs == 5 and training.bf16 and training.weight_decay == 0
    assert training.max_length == 2048
    assert finetune.lora.n_experts == 16
    assert (finetune.lora.r, finetune.lora.alpha) == (8, 16)
    assert (PROJECT / training.deepspeed_config).is_file()
    assert settings["evaluation"].bf16 is True


def test_paper_data_values(settings):
    assert settings["ingest"].format == "ml-1m" and settings["ingest"].k_core == 5
    few2many = settings["few2many"]
    assert (few2many.n_train, few2many.n_test) == (70_000, 30_000)
    item_text = settings["item_text"]
    check_pca_dim(item_text.pca_dim, VICUNA_7B_HIDDEN_SIZE)
    assert (item_text.pca_dim, item_text.k_text, item_text.similarity) == (512, 10, "cosine")
    assert item_text.template_for("movies") in item_text.templates


def test_ctr_lens_settings_are_accepted(settings):
    ctr_lens = settings["ctr_lens"]
    for name in TRAINED_CRMS:
        assert ctr_lens.model_options(name) == {"embed_dim": 64, "hidden_dim": 256, "n_layers": 3}
        assert ctr_lens.train_config(name).max_epochs == 20
