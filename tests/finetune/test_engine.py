"""Training engines: accumulation, checkpoints, config validation, torch vs DeepSpeed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from reclora_pipeline.errors import ParameterError, UserInputError
from reclora_pipeline.finetune import engine as engine_module
from reclora_pipeline.finetune.engine import (
    EngineUnavailableError,
    TorchEngine,
    load_deepspeed_config,
    make_engine,
)
from reclora_pipeline.finetune.trainer import train
from tests.finetune.conftest import ToyTask

DEEPSPEED_CONFIGS = Path(__file__).parents[2] / "conf" / "base" / "deepspeed"
# Deprecation notices raised inside DeepSpeed and transformers, not by this project.
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.distributed.*is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated"),
]


def _micro_step(engine, toy, batch, *, force=False) -> bool:
    engine.backward(toy.loss(engine.model, batch), force_boundary=force)
    return engine.step()


def test_torch_engine_steps_at_accumulation_boundaries_and_when_forced(toy):
    settings = toy.settings(gradient_accumulation_steps=2, warmup_ratio=0.5)
    engine = TorchEngine(toy.model(), settings, n_training_steps=4)
    batches = toy.train_batches(0)
    assert engine.lr == 0.0  # linear warmup starts at 0
    assert not engine.is_accumulation_boundary
    assert _micro_step(engine, toy, batches[0]) is False
    assert engine.is_accumulation_boundary
    assert _micro_step(engine, toy, batches[1]) is True
    assert _micro_step(engine, toy, batches[2], force=True) is True  # short last group
    assert engine.global_step == 2
    assert engine.lr == pytest.approx(settings.lr)  # warmup (2 steps) done, decay next
    with pytest.raises(RuntimeError, match="without backward"):
        engine.step()


def test_torch_checkpoint_restores_weights_optimizer_and_counters(toy, tmp_path):
    settings = toy.settings()
    batches = toy.train_batches(0)
    first = TorchEngine(toy.model(), settings, n_training_steps=6)
    for batch in batches[:2]:
        _micro_step(first, toy, batch)
    first.save_checkpoint(tmp_path, "step-1", {"note": "kept"})

    second = TorchEngine(toy.model(), settings, n_training_steps=6)
    assert second.load_checkpoint(tmp_path) == {"note": "kept"}
    assert second.global_step == 1 and second.lr == first.lr
    _assert_same_state(second.trainable_state_dict(), first.trainable_state_dict(), atol=0)
    for engine in (first, second):  # the same next steps: Adam moments were restored
        for batch in batches[2:4]:
            _micro_step(engine, toy, batch)
    _assert_same_state(second.trainable_state_dict(), first.trainable_state_dict(), atol=0)


def test_checkpoints_are_taken_only_between_accumulation_groups(toy, tmp_path):
    engine = TorchEngine(toy.model(), toy.settings(), n_training_steps=6)
    _micro_step(engine, toy, toy.train_batches(0)[0])
    with pytest.raises(RuntimeError, match="right after an optimizer step"):
        engine.save_checkpoint(tmp_path, "step-0", {})


def test_loading_a_checkpoint_of_the_other_engine_is_a_clear_error(toy, tmp_path):
    (tmp_path / "step-3").mkdir()
    (tmp_path / "latest").write_text("step-3")
    engine = TorchEngine(toy.model(), toy.settings(), n_training_steps=6)
    with pytest.raises(UserInputError, match="not written by the torch engine"):
        engine.load_checkpoint(tmp_path)
    assert TorchEngine(toy.model(), toy.settings(), 6).load_checkpoint(tmp_path / "none") is None


# -- choosing and configuring an engine -----------------------------------------------------


@pytest.fixture
def no_deepspeed_start(monkeypatch):
    """Fail the test if DeepSpeed is started: config errors must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("DeepSpeed was started before the config was validated")

    monkeypatch.setattr(engine_module, "init_deepspeed_distributed", refuse)


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ds.json"
    path.write_text(text)
    return str(path)


def _zero2_with(tmp_path: Path, **changes) -> str:
    config = json.loads((DEEPSPEED_CONFIGS / "zero2.json").read_text())
    config.update(changes)
    return _write(tmp_path, json.dumps(config, indent=2))


@pytest.mark.parametrize("choice", ["deepspeed", "auto"])
def test_missing_deepspeed_config_fails_before_training(toy, tmp_path, no_deepspeed_start, choice):
    missing = tmp_path / "nope.json"
    settings = toy.settings(engine=choice, deepspeed_config=str(missing))
    with pytest.raises(ParameterError, match=r"finetune\.training\.deepspeed_config") as info:
        make_engine(toy.model(), settings, n_training_steps=6)
    assert str(missing) in str(info.value)


def test_unparsable_deepspeed_config_names_file_line_and_column(toy, tmp_path, no_deepspeed_start):
    path = _write(tmp_path, '{\n  "zero_optimization": {"stage": 2,}\n}\n')
    settings = toy.settings(engine="deepspeed", deepspeed_config=path)
    with pytest.raises(ParameterError, match=r"ds\.json is not valid JSON: .* line 2, column 36"):
        make_engine(toy.model(), settings, n_training_steps=6)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train_micro_batch_size_per_gpu": 8}, r"train_micro_batch_size_per_gpu is 8 .* give 2"),
        ({"train_batch_size": 32}, r"train_batch_size is 32 .* give 4"),
        ({"optimizer": {"type": "Adam"}}, r"remove the 'optimizer' section"),
        ({"zero_optimization": {"stage": 4}}, r"stage must be 0, 1, 2 or 3, got 4"),
        ({"fp16": {"enabled": "auto"}}, r"set a value for fp16\.enabled"),
    ],
)
def test_contradicting_deepspeed_config_fails_before_training(
    toy, tmp_path, no_deepspeed_start, changes, message
):
    settings = toy.settings(engine="deepspeed", deepspeed_config=_zero2_with(tmp_path, **changes))
    with pytest.raises(ParameterError, match=message):
        make_engine(toy.model(), settings, n_training_steps=6)


@pytest.mark.parametrize("name", ["zero2", "zero3", "zero2_offload"])
def test_shipped_configs_fill_their_auto_fields(toy, name):
    settings = toy.settings(micro_batch_size=2, gradient_accumulation_steps=3)
    config = load_deepspeed_config(DEEPSPEED_CONFIGS / f"{name}.json", settings, world_size=2)
    assert config["train_batch_size"] == 12
    assert config["train_micro_batch_size_per_gpu"] == 2
    assert config["gradient_accumulation_steps"] == 3
    assert config["gradient_clipping"] == 1.0
    assert config["bf16"]["enabled"] is False  # bf16 off (and no GPU: autocast instead)
    assert "fp16" not in config


def test_fp16_weights_turn_on_deepspeeds_fp16_mode_and_refuse_bf16(toy):
    settings = toy.settings(model_dtype="fp16")
    config = load_deepspeed_config(DEEPSPEED_CONFIGS / "zero2.json", settings)
    assert config["fp16"] == {"enabled": True} and config["bf16"]["enabled"] is False
    with pytest.raises(ParameterError, match="model_dtype.*bf16: false"):
        toy.settings(model_dtype="fp16", bf16=True)


def test_auto_falls_back_to_torch_with_a_warning(toy, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise OSError("no process group backend")

    monkeypatch.setattr(engine_module, "init_deepspeed_distributed", broken)
    zero2 = str(DEEPSPEED_CONFIGS / "zero2.json")
    settings = toy.settings(engine="auto", deepspeed_config=zero2)
    with caplog.at_level(logging.INFO, logger=engine_module.__name__):
        engine = make_engine(toy.model(), settings, n_training_steps=6)
    assert isinstance(engine, TorchEngine)
    assert "DeepSpeed cannot run here (OSError: no process group backend)" in caplog.text
    assert "finetune engine: torch (cpu)" in caplog.text

    with pytest.raises(EngineUnavailableError, match=r"finetune\.training\.engine: torch"):
        settings = toy.settings(engine="deepspeed", deepspeed_config=zero2)
        make_engine(toy.model(), settings, n_training_steps=6)


def test_auto_picks_deepspeed_where_it_runs(toy, deepspeed_ready, caplog):
    settings = toy.settings(engine="auto", deepspeed_config=str(DEEPSPEED_CONFIGS / "zero2.json"))
    with caplog.at_level(logging.INFO, logger=engine_module.__name__):
        engine = make_engine(toy.model(), settings, n_training_steps=6)
    assert engine.name == "deepspeed-zero2 (cpu, gloo)" and engine.is_rank_zero
    assert engine.lr == 0.0 and engine.global_step == 0  # warmup starts at 0
    assert "finetune engine: deepspeed-zero2 (cpu, gloo)" in caplog.text


def test_several_processes_need_a_launcher(toy, monkeypatch, no_deepspeed_start):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    settings = toy.settings(
        engine="deepspeed", deepspeed_config=str(DEEPSPEED_CONFIGS / "zero2.json")
    )
    with pytest.raises(ValueError, match="world_size=2 needs a launcher"):
        make_engine(toy.model(), settings, n_training_steps=6, world_size=2)


def test_torch_engine_is_one_process(toy):
    with pytest.raises(ParameterError, match="one process"):
        make_engine(toy.model(), toy.settings(), n_training_steps=6, world_size=2)


# -- DeepSpeed gives the torch result -------------------------------------------------------


def _run(task: ToyTask, **overrides):
    """Train 2 epochs; (outcome, every micro-batch loss, final trainable weights)."""
    settings = task.settings(**overrides)
    losses: list[float] = []

    def loss(model, batch):
        value = task.loss(model, batch)
        losses.append(float(value.detach()))
        return value

    engines = []

    def build():
        engines.append(make_engine(task.model(), settings, settings.optimizer_steps(5)))
        return engines[0]

    outcome = train(build, task.train_batches, loss, task.evaluate, settings, progress=False)
    return outcome, losses, engines[0].trainable_state_dict()


@pytest.fixture(scope="module")
def torch_result():
    return _run(ToyTask(personalized=True))


@pytest.fixture(scope="module", params=["zero2", "zero3", "zero2_offload"])
def deepspeed_result(request, deepspeed_ready):
    config = str(DEEPSPEED_CONFIGS / f"{request.param}.json")
    return request.param, _run(
        ToyTask(personalized=True), engine="deepspeed", deepspeed_config=config
    )


def test_deepspeed_zero_gives_the_torch_losses_and_weights(torch_result, deepspeed_result):
    name, (outcome, losses, final) = deepspeed_result
    ref_outcome, ref_losses, ref_final = torch_result
    assert outcome.engine_name.startswith(f"deepspeed-{name.replace('_', '-')} (cpu")
    assert outcome.steps == ref_outcome.steps == 6
    assert losses == pytest.approx(ref_losses, rel=1e-5)
    _assert_same_state(final, ref_final, atol=1e-6)
    _assert_same_state(outcome.best_state, ref_outcome.best_state, atol=1e-6)
    initial = {n: p for n, p in ToyTask(personalized=True).model().named_parameters()}
    moved = max((final[n] - initial[n]).abs().max().item() for n in final)
    assert moved > 1e-3  # the comparison is not between untrained adapters


def _assert_same_state(actual, expected, *, atol):
    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        assert actual[name].device.type == "cpu"
        assert actual[name].shape == tensor.shape, name  # ZeRO-3: gathered, not empty
        torch.testing.assert_close(actual[name], tensor, atol=atol, rtol=0, msg=name)
