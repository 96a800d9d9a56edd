"""Choosing a training engine: plain torch or DeepSpeed ZeRO, behind one interface.

The engines live in their own modules (:mod:`.engine_base` for the interface,
:mod:`.torch_engine`, :mod:`.deepspeed_engine`, :mod:`.deepspeed_config`,
:mod:`.deepspeed_setup`); this module picks one and re-exports the public names.
"""

from __future__ import annotations

import logging

from torch import nn

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.finetune.deepspeed_config import BATCH_FIELDS, load_deepspeed_config
from reclora_pipeline.finetune.deepspeed_engine import DeepSpeedEngine
from reclora_pipeline.finetune.deepspeed_setup import (
    init_deepspeed_distributed,
    launcher_world_size,
)
from reclora_pipeline.finetune.engine_base import (
    DEFAULT_MAX_GRAD_NORM,
    EngineUnavailableError,
    TrainingEngine,
)
from reclora_pipeline.finetune.settings import PREFIX, FinetuneSettings
from reclora_pipeline.finetune.torch_engine import TorchEngine

__all__ = [
    "BATCH_FIELDS",
    "DEFAULT_MAX_GRAD_NORM",
    "DeepSpeedEngine",
    "EngineUnavailableError",
    "TorchEngine",
    "TrainingEngine",
    "init_deepspeed_distributed",
    "load_deepspeed_config",
    "make_engine",
]

logger = logging.getLogger(__name__)


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
        world_size = launcher_world_size(world_size)
        config = load_deepspeed_config(settings.deepspeed_config, settings, world_size)
        try:
            # Looked up in this module at call time, so tests can replace it here.
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
