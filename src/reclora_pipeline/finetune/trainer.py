"""Generic training loop: epochs of micro-batches, valid AUC, early stopping, exact resume.

The loop does not know how batches are built. The caller gives ``train_batches(epoch)``,
whose order must depend on (seed, epoch) only and must not draw from the global RNGs:
resuming skips the batches an interrupted epoch had already applied and restores the
global RNG states (dropout), so a resumed run ends with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import random
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.finetune.data_parallel import mean_over_ranks, sum_over_ranks
from reclora_pipeline.finetune.engine import TrainingEngine
from reclora_pipeline.finetune.settings import PREFIX, FinetuneSettings

logger = logging.getLogger(__name__)

# Settings that change the trained weights: a checkpoint only resumes with the same ones.
_RESULT_SETTINGS = (
    "lr",
    "epochs",
    "micro_batch_size",
    "length_window",
    "gradient_accumulation_steps",
    "warmup_ratio",
    "weight_decay",
    "seed",
    "bf16",
)
_TAG = re.compile(r"(epoch|step)-\d+")


@dataclass
class TrainOutcome:
    """What training produced; ``best_state`` is empty if no epoch finished."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int  # 0-based, like ``history[i]["epoch"]``; -1 if no epoch finished
    best_valid_auc: float
    history: list[dict[str, float]]
    engine_name: str
    steps: int
    interrupted: bool = False  # stopped by ``stop_after_steps``


@dataclass
class _Progress:
    """Everything a checkpoint needs besides the engine's own state."""

    epoch: int = 0
    batches_done: int = 0  # micro-batches of `epoch` already applied
    loss_sum: float = 0.0
    samples: int = 0
    train_seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    best_auc: float = -math.inf
    best_epoch: int = -1
    stale_epochs: int = 0
    finished: bool = False

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.batches_done, self.loss_sum = epoch, 0, 0.0
        self.samples, self.train_seconds = 0, 0.0


def train(
    engine: TrainingEngine | Callable[[], TrainingEngine],
    train_batches: Callable[[int], Iterable[Any]],
    compute_loss: Callable[[nn.Module, Any], torch.Tensor],
    evaluate: Callable[[nn.Module], float],
    settings: FinetuneSettings,
    checkpoint_dir: Path | None = None,
    *,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
    stop_after_steps: int | None = None,
) -> TrainOutcome:
    """Train for ``settings.epochs`` epochs, stopping early on the valid AUC.

    ``compute_loss(model, batch)`` returns the mean loss of a micro-batch (it moves the
    batch to the model's device); ``evaluate(model)`` returns the valid AUC and runs in
    eval mode without gradients. A factory for ``engine`` is called after seeding.
    Checkpoints go to ``checkpoint_dir`` at every epoch end and every
    ``checkpoint_every_steps`` optimizer steps. ``stop_after_steps`` stops (with a
    checkpoint) once the run has taken that many optimizer steps in all, to test resuming.
    ``on_epoch_end`` receives each epoch's history record on the first process only.
    """
    _check_arguments(settings, checkpoint_dir, stop_after_steps)
    seed_everything(settings.seed)
    if not isinstance(engine, TrainingEngine):
        engine = engine()
    run = _Progress()
    if settings.resume and checkpoint_dir is not None:  # (resume without a folder: refused)
        run = _resume(engine, Path(checkpoint_dir), settings) or run
    for epoch in range(run.epoch, settings.epochs):
        if run.finished:
            break
        if _train_epoch(engine, run, train_batches(epoch), compute_loss, settings,
                        checkpoint_dir, progress, stop_after_steps):  # fmt: skip
            return _outcome(engine, run, interrupted=True)
        record = _end_epoch(engine, run, evaluate, settings, checkpoint_dir)
        if on_epoch_end is not None and engine.is_rank_zero:
            on_epoch_end(dict(record))
    return _outcome(engine, run)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) from one number."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _train_epoch(
    engine: TrainingEngine,
    run: _Progress,
    batches: Iterable[Any],
    compute_loss: Callable[[nn.Module, Any], torch.Tensor],
    settings: FinetuneSettings,
    checkpoint_dir: Path | None,
    progress: bool,
    stop_after_steps: int | None,
) -> bool:
    """One pass over ``batches`` from ``run.batches_done`` on; True if stopped early."""
    model = engine.model
    model.train()
    bar = tqdm(
        total=len(batches) if isinstance(batches, Sized) else None,
        initial=run.batches_done,
        desc=f"epoch {run.epoch + 1}/{settings.epochs}",
        unit="batch",
        disable=not (progress and engine.is_rank_zero),
        leave=False,
    )
    seen = 0
    with bar:
        for index, (batch, last) in enumerate(_mark_last(batches)):
            seen += 1
            if index < run.batches_done:
                continue  # applied before the interruption; the order is the same
            start = time.perf_counter()
            with engine.autocast():
                loss = compute_loss(model, batch)
            engine.backward(loss, force_boundary=last)
            stepped = engine.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"training loss is {value} at epoch {run.epoch}, batch {index}; "
                    f"try a lower {PREFIX}.lr or {PREFIX}.bf16: false"
                )
            run.train_seconds += time.perf_counter() - start
            run.loss_sum += value
            run.samples += _count_samples(batch, settings.micro_batch_size)
            run.batches_done = index + 1
            bar.update(1)
            bar.set_postfix(
                loss=f"{run.loss_sum / (index + 1):.4f}",
                samples_s=f"{run.samples / max(run.train_seconds, 1e-9):.1f}",
                refresh=False,
            )
            if not stepped:
                continue
            if stop_after_steps is not None and engine.global_step >= stop_after_steps:
                _checkpoint(engine, run, settings, checkpoint_dir, f"step-{engine.global_step}")
                logger.info("stopped after %d optimizer steps (checkpointed)", engine.global_step)
                return True
            every = settings.checkpoint_every_steps
            if every and engine.global_step % every == 0 and not last:
                _checkpoint(engine, run, settings, checkpoint_dir, f"step-{engine.global_step}")
    if seen == 0:
        raise ValueError(f"train_batches({run.epoch}) yielded no batch")
    return False


def _end_epoch(
    engine: TrainingEngine,
    run: _Progress,
    evaluate: Callable[[nn.Module], float],
    settings: FinetuneSettings,
    checkpoint_dir: Path | None,
) -> dict[str, float]:
    """Validate, update the best state and early stopping, checkpoint; the history record."""
    start = time.perf_counter()
    auc = _evaluate(engine, evaluate)
    # Data-parallel processes apply equally many micro-batches: the mean of their mean
    # losses is the epoch's mean loss, and their rates add up.
    record = {
        "epoch": run.epoch,
        "train_loss": mean_over_ranks(run.loss_sum / max(run.batches_done, 1)),
        "valid_auc": auc,
        "samples_per_s": sum_over_ranks(run.samples / max(run.train_seconds, 1e-9)),
        "seconds": run.train_seconds + time.perf_counter() - start,
    }
    run.history.append(record)
    if math.isnan(auc):
        logger.warning("valid AUC is NaN at epoch %d (one class only?)", run.epoch)
    if run.best_state is None or auc > run.best_auc:
        run.best_state = engine.trainable_state_dict()
        run.best_auc, run.best_epoch, run.stale_epochs = auc, run.epoch, 0
    else:
        run.stale_epochs += 1
    logger.info(
        "epoch %d/%d: train loss %.4f, valid AUC %.4f, %.1f samples/s",
        run.epoch + 1, settings.epochs, record["train_loss"], auc, record["samples_per_s"],
    )  # fmt: skip
    if run.stale_epochs >= settings.patience and run.epoch + 1 < settings.epochs:
        logger.info(
            "early stop: no better valid AUC for %d epoch(s); best epoch %d (AUC %.4f)",
            run.stale_epochs, run.best_epoch + 1, run.best_auc,
        )  # fmt: skip
        run.finished = True
    run.start_epoch(run.epoch + 1)
    _checkpoint(engine, run, settings, checkpoint_dir, f"epoch-{run.epoch - 1}")
    return record


def _evaluate(engine: TrainingEngine, evaluate: Callable[[nn.Module], float]) -> float:
    model = engine.model
    model.eval()
    try:
        with torch.no_grad(), engine.autocast():
            return float(evaluate(model))
    finally:
        model.train()


# -- checkpoints ----------------------------------------------------------------------------


def _checkpoint(
    engine: TrainingEngine,
    run: _Progress,
    settings: FinetuneSettings,
    folder: Path | None,
    tag: str,
) -> None:
    if folder is None:
        return
    client_state = {
        "progress": asdict(run),
        "settings": {name: getattr(settings, name) for name in _RESULT_SETTINGS},
        "rng": _rng_state(),
    }
    engine.save_checkpoint(Path(folder), tag, client_state)
    if engine.is_rank_zero:
        # Keep only the newest checkpoint: the best weights travel inside it.
        for old in Path(folder).iterdir():
            if old.is_dir() and old.name != tag and _TAG.fullmatch(old.name):
                shutil.rmtree(old, ignore_errors=True)


def _resume(engine: TrainingEngine, folder: Path, settings: FinetuneSettings) -> _Progress | None:
    state = engine.load_checkpoint(folder)
    if state is None:
        logger.info("no checkpoint in %s: training from the start", folder)
        return None
    saved = state["settings"]
    changed = [
        f"{PREFIX}.{name}: {saved.get(name)!r} -> {getattr(settings, name)!r}"
        for name in _RESULT_SETTINGS
        if saved.get(name) != getattr(settings, name)
    ]
    if changed:
        raise ParameterError(
            f"cannot resume from {folder}: parameters changed since the checkpoint "
            f"({'; '.join(changed)}); restore them or set {PREFIX}.resume: false"
        )
    known = {f.name for f in fields(_Progress)}
    run = _Progress(**{k: v for k, v in state["progress"].items() if k in known})
    _set_rng_state(state["rng"])
    logger.info(
        "resumed from %s: epoch %d, batch %d, optimizer step %d",
        folder, run.epoch + 1, run.batches_done, engine.global_step,
    )  # fmt: skip
    return run


def _rng_state() -> dict[str, Any]:
    # numpy's key array becomes a tensor: checkpoints load with torch.load(weights_only=True).
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = torch.from_numpy(numpy_state["state"]["key"].astype(np.int64))
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuples(state["python"]))
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = dict(numpy_state["state"])
    numpy_state["state"]["key"] = numpy_state["state"]["key"].numpy().astype(np.uint32)
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value: Any) -> Any:
    # random.setstate wants tuples; some serialisations hand lists back.
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


# -- small helpers --------------------------------------------------------------------------


def _check_arguments(
    settings: FinetuneSettings, checkpoint_dir: Path | None, stop_after_steps: int | None
) -> None:
    if checkpoint_dir is None:
        for name in ("resume", "checkpoint_every_steps"):
            if getattr(settings, name):
                raise ParameterError(f"{PREFIX}.{name} needs a checkpoint folder; none was given")
        if stop_after_steps is not None:
            raise ValueError("stop_after_steps needs a checkpoint_dir to resume from")
    if stop_after_steps is not None and stop_after_steps < 1:
        raise ValueError(f"stop_after_steps must be >= 1, got {stop_after_steps}")


def _mark_last(items: Iterable[Any]) -> Iterator[tuple[Any, bool]]:
    """(item, is_last) pairs: the last micro-batch closes a short accumulation group."""
    iterator = iter(items)
    try:
        current = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield current, False
        current = following
    yield current, True


def _count_samples(batch: Any, default: int) -> int:
    """Rows of a batch: first dimension of its first tensor (tensor, mapping, dataclass...)."""
    if isinstance(batch, torch.Tensor):
        values: list[Any] = [batch]
    elif isinstance(batch, Mapping):
        values = list(batch.values())
    elif is_dataclass(batch) and not isinstance(batch, type):
        values = [getattr(batch, f.name) for f in fields(batch)]
    elif isinstance(batch, (list, tuple)):
        values = list(batch)
    else:
        values = []
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return default


def _outcome(engine: TrainingEngine, run: _Progress, *, interrupted: bool = False) -> TrainOutcome:
    return TrainOutcome(
        best_state=dict(run.best_state or {}),
        best_epoch=run.best_epoch,
        best_valid_auc=run.best_auc,
        history=[dict(r) for r in run.history],
        engine_name=engine.name,
        steps=engine.global_step,
        interrupted=interrupted,
    )
