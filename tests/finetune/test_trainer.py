"""The training loop: early stopping, history, checkpoints and exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.finetune.engine import make_engine
from reclora_pipeline.finetune.trainer import TrainOutcome, train
from tests.finetune.conftest import ToyTask

DEEPSPEED_CONFIGS = Path(__file__).parents[2] / "conf" / "base" / "deepspeed"
# Deprecation notices raised inside DeepSpeed and transformers, not by this project.
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.distributed.*is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated"),
]
MICRO_BATCHES = 5  # per epoch, see ToyTask


def _train(task: ToyTask, checkpoint_dir=None, *, evaluate=None, batches=None, **kwargs):
    settings = kwargs.pop("settings")
    n_steps = settings.optimizer_steps(MICRO_BATCHES)
    return train(
        lambda: make_engine(task.model(), settings, n_steps),
        batches or task.train_batches,
        task.loss,
        evaluate or task.evaluate,
        settings,
        checkpoint_dir,
        progress=False,
        **kwargs,
    )


def _assert_same_outcome(actual: TrainOutcome, expected: TrainOutcome) -> None:
    assert actual.steps == expected.steps
    assert actual.best_epoch == expected.best_epoch
    for got, want in zip(actual.history, expected.history, strict=True):
        assert got["epoch"] == want["epoch"]
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-6)
        assert got["valid_auc"] == want["valid_auc"]
    assert actual.best_state.keys() == expected.best_state.keys()
    for name, tensor in expected.best_state.items():
        torch.testing.assert_close(actual.best_state[name], tensor, atol=0, rtol=0, msg=name)


def _resume_matches_uninterrupted(task: ToyTask, tmp_path: Path, stop: int, **overrides):
    # Increasing AUCs: the best state is the last epoch's, i.e. the final weights.
    rising = _Scripted([0.5, 0.6, 0.7])
    settings = task.settings(epochs=3, **overrides)
    full = _train(task, settings=settings, evaluate=rising)

    first = _train(task, tmp_path, settings=settings, evaluate=_Scripted([0.5, 0.6, 0.7]),
                   stop_after_steps=stop)  # fmt: skip
    assert first.interrupted and first.steps == stop
    resumed_settings = task.settings(epochs=3, resume=True, **overrides)
    validated = (stop - 1) // 3  # epochs validated before the stop (3 steps per epoch)
    resumed = _train(task, tmp_path, settings=resumed_settings,
                     evaluate=_Scripted([0.5, 0.6, 0.7][validated:]))  # fmt: skip
    assert not resumed.interrupted and len(resumed.history) == 3
    assert resumed.engine_name == full.engine_name == first.engine_name
    _assert_same_outcome(resumed, full)
    return resumed


class _Scripted:
    """An evaluate() returning given AUCs and recording the weights it saw."""

    def __init__(self, aucs: list[float]) -> None:
        self.aucs, self.seen = list(aucs), []

    def __call__(self, model) -> float:
        # A DeepSpeed engine passes eval() to its module but keeps its own flag.
        assert not getattr(model, "module", model).training and not torch.is_grad_enabled()
        self.seen.append({n: p.detach().clone() for n, p in model.named_parameters()
                          if p.requires_grad})  # fmt: skip
        return self.aucs[len(self.seen) - 1]


@pytest.mark.parametrize("stop", [2, 3, 4])
def test_torch_resume_reaches_the_uninterrupted_weights(tmp_path, stop):
    # stop=2 resumes inside epoch 0, 3 before its validation, 4 inside epoch 1 after an
    # epoch-end checkpoint; the personalized model's gate dropout checks that the RNG state is restored.
    _resume_matches_uninterrupted(ToyTask(personalized=True), tmp_path, stop)


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_deepspeed_resume_reaches_the_uninterrupted_weights(tmp_path, stage, deepspeed_ready):
    config = str(DEEPSPEED_CONFIGS / f"{stage}.json")
    task = ToyTask(personalized=stage == "zero2")
    outcome = _resume_matches_uninterrupted(
        task, tmp_path, 4, engine="deepspeed", deepspeed_config=config
    )
    assert outcome.engine_name.startswith(f"deepspeed-{stage} (cpu")


def test_mid_epoch_checkpoints_resume_too(tmp_path):
    task = ToyTask()
    settings = task.settings(checkpoint_every_steps=1)
    full = _train(task, tmp_path / "full", settings=settings)
    _train(task, tmp_path / "cut", settings=settings, stop_after_steps=1)
    resumed_settings = task.settings(checkpoint_every_steps=1, resume=True)
    resumed = _train(task, tmp_path / "cut", settings=resumed_settings)
    _assert_same_outcome(resumed, full)
    # Only the newest checkpoint stays on disk.
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["epoch-1", "latest"]


def test_early_stopping_keeps_the_best_epochs_weights(toy):
    evaluate = _Scripted([0.5, 0.8, 0.7, 0.6, 0.9])
    records = []
    outcome = _train(toy, settings=toy.settings(epochs=5, patience=2), evaluate=evaluate,
                     on_epoch_end=records.append)  # fmt: skip
    assert [r["epoch"] for r in outcome.history] == [0, 1, 2, 3]  # 2 epochs without progress
    assert outcome.best_epoch == 1 and outcome.best_valid_auc == 0.8
    assert records == outcome.history
    assert outcome.steps == 4 * 3
    best_seen = evaluate.seen[1]
    assert outcome.best_state.keys() == best_seen.keys()
    for name, tensor in best_seen.items():
        torch.testing.assert_close(outcome.best_state[name], tensor, atol=0, rtol=0)
    assert any(not torch.equal(evaluate.seen[3][n], t) for n, t in best_seen.items())


def test_history_records_loss_auc_and_speed(toy):
    outcome = _train(toy, settings=toy.settings(epochs=1))
    (record,) = outcome.history
    assert set(record) == {"epoch", "train_loss", "valid_auc", "samples_per_s", "seconds"}
    assert 0.0 < record["train_loss"] < 5 and 0.0 <= record["valid_auc"] <= 1.0
    assert record["samples_per_s"] > 0 and record["seconds"] > 0
    assert outcome.engine_name == "torch (cpu)" and not outcome.interrupted


def test_progress_bar_runs(toy, capsys):
    settings = toy.settings(epochs=1)
    train(lambda: make_engine(toy.model(), settings, 3), toy.train_batches, toy.loss,
          toy.evaluate, settings, progress=True)  # fmt: skip
    assert "epoch 1/1" in capsys.readouterr().err


def test_a_finished_run_resumes_to_its_outcome_without_training(toy, tmp_path):
    settings = toy.settings()
    full = _train(toy, tmp_path, settings=settings)

    def no_batches(epoch):
        raise AssertionError("a finished run must not train again")

    again = _train(toy, tmp_path, settings=toy.settings(resume=True), batches=no_batches)
    _assert_same_outcome(again, full)


def test_resume_without_a_checkpoint_starts_from_scratch(toy, tmp_path):
    fresh = _train(toy, tmp_path / "empty", settings=toy.settings(resume=True))
    assert fresh.steps == 6 and len(fresh.history) == 2


def test_resume_refuses_changed_parameters(toy, tmp_path):
    _train(toy, tmp_path, settings=toy.settings(), stop_after_steps=2)
    with pytest.raises(
        ParameterError, match=r"finetune\.training\.lr: 0\.005 -> 0\.01.*resume: false"
    ):
        _train(toy, tmp_path, settings=toy.settings(lr=0.01, resume=True))


def test_bf16_on_cpu_autocasts_the_forward(toy):
    seen = []

    def loss(model, batch):
        seen.append(torch.is_autocast_enabled("cpu"))
        return toy.loss(model, batch)

    settings = toy.settings(epochs=1, bf16=True)
    outcome = train(lambda: make_engine(toy.model(), settings, 3), toy.train_batches, loss,
                    toy.evaluate, settings, progress=False)  # fmt: skip
    assert seen and all(seen) and outcome.history[0]["train_loss"] > 0


def test_argument_errors(toy, tmp_path):
    with pytest.raises(
        ParameterError, match=r"finetune\.training\.resume needs a checkpoint folder"
    ):
        _train(toy, settings=toy.settings(resume=True))
    with pytest.raises(ValueError, match="stop_after_steps needs a checkpoint_dir"):
        _train(toy, settings=toy.settings(), stop_after_steps=1)
    with pytest.raises(ValueError, match=r"train_batches\(0\) yielded no batch"):
        _train(toy, settings=toy.settings(), batches=lambda epoch: [])


def test_a_non_finite_loss_stops_training(toy):
    settings = toy.settings()

    def nan_loss(model, batch):
        return toy.loss(model, batch) * float("nan")

    with pytest.raises(FloatingPointError, match="training loss is nan at epoch 0, batch 0"):
        train(lambda: make_engine(toy.model(), settings, 6), toy.train_batches, nan_loss,
              toy.evaluate, settings, progress=False)  # fmt: skip
