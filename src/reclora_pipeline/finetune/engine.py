"""Training engines: one interface, a plain torch loop and DeepSpeed ZeRO.

Both engines train only the parameters with ``requires_grad`` (the adapters) with
``torch.optim.AdamW`` and a linear warmup + decay schedule, accumulate gradients over
``gradient_accumulation_steps`` micro-batches (loss scaled by 1/accumulation), clip the
gradient norm and step the scheduler once per optimizer step, so on one process they give
the same result up to float rounding.

DeepSpeed configs (``conf/base/deepspeed/*.json``) leave the batch fields as ``"auto"``;
they are filled from :class:`FinetuneSettings` before ``deepspeed.initialize``:

- ``zero2.json``: ZeRO-2, optimizer state and gradients partitioned over processes.
- ``zero3.json``: ZeRO-3, parameters partitioned too (they are empty outside a gather).
- ``zero2_offload.json``: ZeRO-2 with the optimizer state and step on the CPU
  (``zero_force_ds_cpu_optimizer: false`` lets DeepSpeed offload our torch AdamW;
  ``pin_memory`` speeds GPU-to-host copies and is a no-op on a CPU-only machine).

``bf16.enabled: "auto"`` becomes ``finetune.bf16`` on CUDA and false on CPU, where the
trainer autocasts the forward to bfloat16 instead. ``gradient_clipping`` is 1.0, the norm
the torch engine clips to. ``overlap_comm`` is off (nothing to overlap in one process;
turn it on for several GPUs), buckets are 5e7 elements, and ``steps_per_print`` is large
because the trainer's progress bar reports. An ``optimizer`` or ``scheduler`` section is
refused: they come from the ``finetune`` parameters.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reclora_pipeline.errors import ParameterError, UserInputError
from reclora_pipeline.finetune.settings import PREFIX, FinetuneSettings

logger = logging.getLogger(__name__)

# The batch fields a config may leave as "auto", filled from the settings.
BATCH_FIELDS = ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps")
DEFAULT_MAX_GRAD_NORM = 1.0
# Everything the trainer passes as client_state goes under one key, clear of DeepSpeed's own.
_CLIENT_KEY = "reclora_client_state"
_TORCH_STATE_FILE = "torch_engine_state.pt"
_LATEST_FILE = "latest"  # the file name DeepSpeed uses too: one layout for both engines


class EngineUnavailableError(RuntimeError):
    """``finetune.engine: deepspeed`` was asked for but DeepSpeed cannot run here."""


class TrainingEngine(ABC):
    """Forward/backward/step of one training process, with checkpoints.

    Call ``engine.model(...)`` for the forward, then ``backward(loss)`` and ``step()`` for
    every micro-batch. The optimizer steps when the micro-batch closes an accumulation
    group; ``backward(loss, force_boundary=True)`` closes a short last group of an epoch.
    """

    name: str
    model: nn.Module
    device: torch.device
    is_rank_zero: bool = True

    def __init__(self, settings: FinetuneSettings) -> None:
        self.settings = settings
        self._micro_in_group = 0  # micro-batches already accumulated in the open group
        self._boundary: bool | None = None  # decided by backward(), consumed by step()

    # -- the training step ----------------------------------------------------------------

    @property
    def is_accumulation_boundary(self) -> bool:
        """Whether the current micro-batch closes an accumulation group (steps the optimizer)."""
        if self._boundary is not None:
            return self._boundary
        return self._micro_in_group + 1 >= self.settings.gradient_accumulation_steps

    def backward(self, loss: torch.Tensor, *, force_boundary: bool = False) -> None:
        """Accumulate the gradients of ``loss`` (the micro-batch mean; scaled here)."""
        if self._boundary is not None:
            raise RuntimeError("backward() called twice without step() in between")
        self._boundary = force_boundary or self.is_accumulation_boundary
        self._backward(loss, self._boundary)

    def step(self) -> bool:
        """End the micro-step; returns True when the optimizer and scheduler stepped."""
        if self._boundary is None:
            raise RuntimeError("step() called without backward()")
        boundary, self._boundary = self._boundary, None
        self._step(boundary)
        self._micro_in_group = 0 if boundary else self._micro_in_group + 1
        return boundary

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for forward passes: bfloat16 autocast where the engine does not cast."""
        if self.settings.bf16 and not self._casts_itself():
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _casts_itself(self) -> bool:
        return False

    def _check_can_checkpoint(self) -> None:
        # Accumulated gradients are not saved: a checkpoint inside a group could not resume.
        if self._micro_in_group or self._boundary is not None:
            raise RuntimeError("checkpoints are taken only right after an optimizer step")

    @abstractmethod
    def _backward(self, loss: torch.Tensor, boundary: bool) -> None: ...

    @abstractmethod
    def _step(self, boundary: bool) -> None: ...

    @property
    @abstractmethod
    def global_step(self) -> int:
        """Optimizer steps taken so far (restored by :meth:`load_checkpoint`)."""

    @property
    @abstractmethod
    def lr(self) -> float:
        """Current learning rate."""

    # -- state ----------------------------------------------------------------------------

    @abstractmethod
    def save_checkpoint(self, folder: Path, tag: str, client_state: dict[str, Any]) -> Path:
        """Write weights, optimizer, scheduler, counters and ``client_state`` to folder/tag."""

    @abstractmethod
    def load_checkpoint(self, folder: Path) -> dict[str, Any] | None:
        """Restore the latest checkpoint in ``folder``; its client_state, or None if none."""

    @abstractmethod
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Full CPU copies of the trainable parameters, keyed by their name in the model."""


# -- torch ----------------------------------------------------------------------------------


class TorchEngine(TrainingEngine):
    """Single-process loop: AdamW on the trainable parameters, linear schedule, clipping."""

    def __init__(
        self,
        model: nn.Module,
        settings: FinetuneSettings,
        n_training_steps: int,
        *,
        device: torch.device | str | None = None,
        max_grad_norm: float = DEFAULT_MAX_GRAD_NORM,
    ) -> None:
        super().__init__(settings)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.name = f"torch ({self.device.type})"
        self._named = _trainable_parameters(model)
        self.max_grad_norm = max_grad_norm
        self.optimizer = _adamw([p for _, p in self._named], settings)
        self.scheduler = _linear_schedule(self.optimizer, settings, n_training_steps)
        self._global_step = 0

    def _backward(self, loss: torch.Tensor, boundary: bool) -> None:
        (loss / self.settings.gradient_accumulation_steps).backward()

    def _step(self, boundary: bool) -> None:
        if not boundary:
            return
        params = [p for _, p in self._named]
        if self.max_grad_norm and self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._global_step += 1

    @property
    def global_step(self) -> int:
        return self._global_step

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def save_checkpoint(self, folder: Path, tag: str, client_state: dict[str, Any]) -> Path:
        self._check_can_checkpoint()
        target = Path(folder) / tag
        target.mkdir(parents=True, exist_ok=True)
        state = {
            "params": {name: p.detach().cpu() for name, p in self._named},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "global_step": self._global_step,
            _CLIENT_KEY: client_state,
        }
        # Write then rename: an interrupted save must not leave a half file behind `latest`.
        partial = target / (_TORCH_STATE_FILE + ".partial")
        torch.save(state, partial)
        partial.replace(target / _TORCH_STATE_FILE)
        _write_latest(Path(folder), tag)
        return target

    def load_checkpoint(self, folder: Path) -> dict[str, Any] | None:
        tag = _read_latest(Path(folder))
        if tag is None:
            return None
        path = Path(folder) / tag / _TORCH_STATE_FILE
        if not path.is_file():
            raise UserInputError(
                f"checkpoint {Path(folder) / tag} was not written by the torch engine; resume "
                f"with the engine that wrote it ({PREFIX}.engine) or set {PREFIX}.resume: false"
            )
        # weights_only: only tensors and plain containers are unpickled.
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved = state["params"]
        own = dict(self._named)
        if set(saved) != set(own):
            raise UserInputError(
                f"checkpoint {path} holds parameters {sorted(set(saved) ^ set(own))[:5]} that "
                f"the model does not match; set {PREFIX}.resume: false to start over"
            )
        with torch.no_grad():
            for name, param in own.items():
                param.copy_(saved[name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._global_step = int(state["global_step"])
        return state[_CLIENT_KEY]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().to("cpu", copy=True) for name, p in self._named}


# -- DeepSpeed ------------------------------------------------------------------------------


class DeepSpeedEngine(TrainingEngine):
    """DeepSpeed ZeRO (stage from the config) with our own AdamW and schedule.

    Build it with :func:`make_engine`, which validates the config and sets up the
    process group. ``model`` is the DeepSpeed engine (call it like the wrapped module).
    """

    def __init__(
        self,
        model: nn.Module,
        settings: FinetuneSettings,
        n_training_steps: int,
        config: dict[str, Any],
    ) -> None:
        super().__init__(settings)
        deepspeed = _import_deepspeed()
        self._deepspeed = deepspeed
        named = _trainable_parameters(model)
        self._trainable_names = [name for name, _ in named]
        # Our own torch AdamW: DeepSpeed's fused/CPU Adam compile C++ (minutes) on first use.
        optimizer = _adamw([p for _, p in named], settings)
        scheduler = _linear_schedule(optimizer, settings, n_training_steps)
        self._ds, _, _, _ = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=config
        )
        self.model = self._ds
        self.device = torch.device(self._ds.device)
        self.is_rank_zero = self._ds.global_rank == 0
        self.stage = int(config.get("zero_optimization", {}).get("stage", 0))
        self._bf16 = bool(config.get("bf16", {}).get("enabled", False))
        offload = config.get("zero_optimization", {}).get("offload_optimizer", {})
        offload_tag = "-offload" if offload.get("device", "none") != "none" else ""
        accelerator = deepspeed.get_accelerator()
        self.name = (
            f"deepspeed-zero{self.stage}{offload_tag} "
            f"({accelerator.device_name()}, {accelerator.communication_backend_name()})"
        )

    def _casts_itself(self) -> bool:
        return self._bf16

    def _backward(self, loss: torch.Tensor, boundary: bool) -> None:
        # We own the boundary (epochs may end inside a group); DeepSpeed scales by 1/accum.
        self._ds.set_gradient_accumulation_boundary(boundary)
        self._ds.backward(loss)

    def _step(self, boundary: bool) -> None:
        self._ds.step()  # steps optimizer + scheduler only at the boundary set above

    @property
    def global_step(self) -> int:
        return int(self._ds.global_steps)

    @property
    def lr(self) -> float:
        return float(self._ds.get_lr()[0])

    def save_checkpoint(self, folder: Path, tag: str, client_state: dict[str, Any]) -> Path:
        self._check_can_checkpoint()
        # The frozen base model is not saved: resuming rebuilds it from its own files.
        self._ds.save_checkpoint(
            str(folder),
            tag=tag,
            client_state={_CLIENT_KEY: client_state},
            exclude_frozen_parameters=True,
        )
        return Path(folder) / tag

    def load_checkpoint(self, folder: Path) -> dict[str, Any] | None:
        tag = _read_latest(Path(folder))
        if tag is None:
            return None
        if not list((Path(folder) / tag).glob("*model_states.pt")):
            raise UserInputError(
                f"checkpoint {Path(folder) / tag} was not written by DeepSpeed; resume with "
                f"the engine that wrote it ({PREFIX}.engine) or set {PREFIX}.resume: false"
            )
        # Non-strict: the frozen parameters were left out of the checkpoint on purpose.
        path, client = self._ds.load_checkpoint(str(folder), tag=tag, load_module_strict=False)
        if path is None:
            raise UserInputError(f"DeepSpeed could not load the checkpoint {Path(folder) / tag}")
        return client[_CLIENT_KEY]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        wanted = set(self._trainable_names)
        named = [(n, p) for n, p in self._ds.module.named_parameters() if n in wanted]
        if self._bf16:
            # The module holds bf16 copies; the optimizer's fp32 master weights are exact.
            from deepspeed.utils import safe_get_full_fp32_param

            full = {n: safe_get_full_fp32_param(p) for n, p in named}
            if all(v is not None for v in full.values()):
                return {n: v.detach().to("cpu", copy=True) for n, v in full.items()}
        # ZeRO-3 parameters are empty outside a gather; modifier_rank=None: read-only.
        gather = (
            self._deepspeed.zero.GatheredParameters([p for _, p in named], modifier_rank=None)
            if self.stage == 3
            else contextlib.nullcontext()
        )
        with gather:
            return {n: p.detach().to("cpu", copy=True) for n, p in named}


# -- building an engine ---------------------------------------------------------------------


def make_engine(
    model: nn.Module,
    settings: FinetuneSettings,
    n_training_steps: int,
    world_size: int = 1,
) -> TrainingEngine:
    """The engine ``settings.engine`` asks for; "auto" falls back to torch, with a warning.

    The DeepSpeed config is validated first (also for "auto"), so a broken file fails
    before any training. ``world_size`` is the number of training processes; a DeepSpeed
    launcher's ``WORLD_SIZE`` must agree with it.
    """
    if n_training_steps < 1:
        raise ValueError(f"n_training_steps must be >= 1, got {n_training_steps}")
    if settings.engine == "torch":
        settings.effective_batch_size(world_size)
        if world_size != 1:
            raise ParameterError(
                f"{PREFIX}.engine: torch trains in one process; got world size {world_size}. "
                f"Use {PREFIX}.engine: deepspeed with a launcher for several processes"
            )
        engine: TrainingEngine = TorchEngine(model, settings, n_training_steps)
    else:
        world_size = _launcher_world_size(world_size)
        config = load_deepspeed_config(settings.deepspeed_config, settings, world_size)
        try:
            init_deepspeed_distributed(world_size)
        except Exception as exc:  # any import/backend failure means "DeepSpeed cannot run"
            reason = f"{type(exc).__name__}: {exc}"
            if settings.engine == "deepspeed" or world_size > 1:
                raise EngineUnavailableError(
                    f"{PREFIX}.engine is deepspeed but DeepSpeed cannot run here ({reason}); "
                    f"set {PREFIX}.engine: torch (or auto) to train with plain torch"
                ) from exc
            logger.warning("DeepSpeed cannot run here (%s); training with torch instead", reason)
            clip = float(config.get("gradient_clipping", DEFAULT_MAX_GRAD_NORM))
            engine = TorchEngine(model, settings, n_training_steps, max_grad_norm=clip)
        else:
            engine = DeepSpeedEngine(model, settings, n_training_steps, config)
    logger.info("finetune engine: %s", engine.name)
    return engine


def load_deepspeed_config(
    path: str | Path, settings: FinetuneSettings, world_size: int = 1
) -> dict[str, Any]:
    """Read a DeepSpeed JSON config and fill its "auto" fields from ``settings``."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(
            f"{PREFIX}.deepspeed_config: {path} does not exist (resolved from "
            f"{Path.cwd()}); give the path of a DeepSpeed JSON file such as "
            f"conf/base/deepspeed/zero2.json"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ParameterError(
            f"{PREFIX}.deepspeed_config: {path} is not valid JSON: {exc.msg} at line "
            f"{exc.lineno}, column {exc.colno}"
        ) from exc
    if not isinstance(config, dict):
        raise ParameterError(f"{PREFIX}.deepspeed_config: {path} must hold a JSON object")
    for section in ("optimizer", "scheduler"):
        if section in config:
            raise ParameterError(
                f"{path}: remove the {section!r} section; the optimizer (AdamW) and its "
                f"schedule come from {PREFIX}.lr, {PREFIX}.weight_decay and {PREFIX}.warmup_ratio"
            )
    expected = {
        "train_batch_size": settings.effective_batch_size(world_size),
        "train_micro_batch_size_per_gpu": settings.micro_batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
    }
    for key, value in expected.items():
        given = config.get(key, "auto")
        if given != "auto" and given != value:
            raise ParameterError(
                f"{path}: {key} is {given!r} but the {PREFIX} parameters give {value} "
                f"({PREFIX}.micro_batch_size={settings.micro_batch_size}, "
                f"{PREFIX}.gradient_accumulation_steps={settings.gradient_accumulation_steps}, "
                f'world size {world_size}); set it to "auto"'
            )
        config[key] = value
    if config.get("gradient_clipping", "auto") == "auto":
        config["gradient_clipping"] = DEFAULT_MAX_GRAD_NORM
    bf16 = config.setdefault("bf16", {"enabled": "auto"})
    if isinstance(bf16, dict) and bf16.get("enabled") == "auto":
        # On CPU the trainer autocasts instead: DeepSpeed would cast the whole model.
        bf16["enabled"] = settings.bf16 and torch.cuda.is_available()
    zero = config.get("zero_optimization", {})
    stage = zero.get("stage", 0) if isinstance(zero, dict) else None
    if stage not in (0, 1, 2, 3):
        raise ParameterError(f"{path}: zero_optimization.stage must be 0, 1, 2 or 3, got {stage!r}")
    if isinstance(zero.get("offload_optimizer"), dict):
        # We pass a torch AdamW; DeepSpeed would otherwise insist on its compiled CPU Adam.
        config.setdefault("zero_force_ds_cpu_optimizer", False)
    left = list(_auto_fields(config))
    if left:
        raise ParameterError(
            f'{path}: "auto" is only understood for {", ".join(BATCH_FIELDS)}, '
            f"gradient_clipping and bf16.enabled; set a value for {', '.join(left)}"
        )
    return config


def init_deepspeed_distributed(world_size: int = 1) -> Any:
    """Import DeepSpeed and start its process group (a one-process group by default)."""
    if not torch.cuda.is_available():
        # Before the import: DeepSpeed picks its accelerator once, on first use.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    # A launcher (deepspeed, torchrun) sets these; a plain `kedro run` is one process.
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        os.environ["MASTER_PORT"] = str(_free_port())
    for key, value in (("RANK", "0"), ("WORLD_SIZE", str(world_size)), ("LOCAL_RANK", "0")):
        os.environ.setdefault(key, value)
    deepspeed = _import_deepspeed()
    accelerator = deepspeed.get_accelerator()
    if accelerator.device_name() == "cpu" and int(os.environ["WORLD_SIZE"]) == 1:
        _skip_shared_memory_comm(deepspeed)
    deepspeed.init_distributed(dist_backend=accelerator.communication_backend_name())
    return deepspeed


def _skip_shared_memory_comm(deepspeed: Any) -> None:
    """Mark DeepSpeed's CPU shared-memory all-reduce op unavailable for this process.

    On CPU, ``init_distributed`` JIT-compiles that C++ op (about a minute on two cores,
    cached under TORCH_EXTENSIONS_DIR) although one process never reduces across
    processes. DeepSpeed builds it only if its op compatibility table says so, so we set
    that entry to False. The table is otherwise probed on first access by compiling test
    programs (which prints linker errors for missing libraries such as libaio); in
    DeepSpeed 0.19.8 only this check reads it, so an unprobed table holds just our entry.
    Several CPU processes keep the op: there it speeds up all-reduce.
    """
    try:
        from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder

        table = vars(deepspeed.ops).setdefault("__compatible_ops__", {})
        table[ShareMemCommBuilder.NAME] = False
    except (ImportError, AttributeError, TypeError) as exc:  # other DeepSpeed versions
        logger.debug("could not skip DeepSpeed's shared-memory op: %s", exc)


def _import_deepspeed() -> Any:
    import deepspeed  # lazy: slow to import, and only needed for this engine

    return deepspeed


def _launcher_world_size(world_size: int) -> int:
    """``world_size``, checked against the launcher's (one process without a launcher)."""
    launched = os.environ.get("WORLD_SIZE")
    if launched is None and world_size > 1:
        # Without a launcher nobody starts the other processes: rank 0 would wait forever.
        raise ValueError(
            f"world_size={world_size} needs a launcher (deepspeed or torchrun) that starts "
            f"the processes and sets WORLD_SIZE"
        )
    if launched is not None and launched.isdigit() and int(launched) != world_size:
        raise ValueError(
            f"WORLD_SIZE={launched} (set by a launcher) but make_engine got world_size="
            f"{world_size}; pass the launcher's world size"
        )
    return world_size


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _auto_fields(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _auto_fields(item, f"{prefix}{key}.")
    elif value == "auto":
        yield prefix.rstrip(".")


def _trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameters (requires_grad=True)")
    return named


def _adamw(params: list[nn.Parameter], settings: FinetuneSettings) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)


def _linear_schedule(
    optimizer: torch.optim.Optimizer, settings: FinetuneSettings, n_training_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over ``warmup_ratio`` of the steps, then linear decay to 0."""
    from transformers import get_linear_schedule_with_warmup

    warmup = math.ceil(settings.warmup_ratio * n_training_steps)
    return get_linear_schedule_with_warmup(optimizer, warmup, n_training_steps)


def _write_latest(folder: Path, tag: str) -> None:
    partial = folder / (_LATEST_FILE + ".partial")
    partial.write_text(tag, encoding="utf-8")
    partial.replace(folder / _LATEST_FILE)


def _read_latest(folder: Path) -> str | None:
    latest = folder / _LATEST_FILE
    if not latest.is_file():
        return None
    return latest.read_text(encoding="utf-8").strip() or None
