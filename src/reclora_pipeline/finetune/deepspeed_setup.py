"""Starting DeepSpeed: its import, the process group and the launcher's world size."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import torch

logger = logging.getLogger(__name__)


def init_deepspeed_distributed(world_size: int = 1) -> Any:
    """Import DeepSpeed and start its process group (a one-process group by default)."""
    if not torch.cuda.is_available():
        # Before the import: DeepSpeed picks its accelerator once, on first use.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    # A launcher (deepspeed, torchrun) sets these; a plain `kedro run` is one process.
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        os.environ["MASTER_PORT"] = str(free_port())
    for key, value in (("RANK", "0"), ("WORLD_SIZE", str(world_size)), ("LOCAL_RANK", "0")):
        os.environ.setdefault(key, value)
    deepspeed = import_deepspeed()
    accelerator = deepspeed.get_accelerator()
    if accelerator.device_name() == "cpu":
        _skip_shared_memory_comm(deepspeed)
    deepspeed.init_distributed(dist_backend=accelerator.communication_backend_name())
    return deepspeed


def import_deepspeed() -> Any:
    """The ``deepspeed`` module, imported on first use."""
    import deepspeed  # lazy: slow to import, and only needed for this engine

    return deepspeed


def launcher_world_size(world_size: int) -> int:
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


def _skip_shared_memory_comm(deepspeed: Any) -> None:
    """Mark DeepSpeed's CPU shared-memory all-reduce op unavailable for this process.

    On CPU, ``init_distributed`` JIT-compiles that C++ op (about a minute on two cores,
    cached under TORCH_EXTENSIONS_DIR, and a C++ compiler is needed). One process never
    reduces across processes, and several CPU processes (the data-parallel check) reduce
    a few adapter gradients per step, which gloo does fast enough. DeepSpeed builds it
    only if its op compatibility table says so, so we set that entry to False. The table
    is otherwise probed on first access by compiling test programs (which prints linker
    errors for missing libraries such as libaio); in DeepSpeed 0.19.8 only this check
    reads it, so an unprobed table holds just our entry.
    """
    try:
        from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder

        table = vars(deepspeed.ops).setdefault("__compatible_ops__", {})
        table[ShareMemCommBuilder.NAME] = False
    except (ImportError, AttributeError, TypeError) as exc:  # other DeepSpeed versions
        logger.debug("could not skip DeepSpeed's shared-memory op: %s", exc)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
