"""Numeric precision and thread count for the machine a stage runs on.

Both are chosen once per stage, logged, and written into the stage's report, so a figure
can be traced to the precision and threads behind it.

bfloat16 pays off only where the hardware multiplies it fast. CUDA GPUs with bf16 support
and CPUs with AMX tiles do. CPUs without any native bf16 (no AVX512-BF16) emulate it,
which is slower than fp32. CPUs with AVX512-BF16 but no AMX differ: on a 2-core Xeon
bf16 autocast scored prompts 1.4-1.7x slower than fp32, on a 2-core AMD EPYC 1.7x faster
(docs/benchmarks.md). For those a probe of about a second (the same small matmuls
in both precisions) decides. oneDNN honours ``ONEDNN_MAX_CPU_ISA``, so a capped ISA
counts as what it allows.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import torch

from reclora_pipeline.errors import SettingError

Bf16Setting = bool | Literal["auto"]

logger = logging.getLogger(__name__)

# oneDNN ISA names (ONEDNN_MAX_CPU_ISA) in increasing order; a cap allows what is below it.
_ISA_ORDER = (
    "SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
)  # fmt: skip
_NO_CAP = ("", "ALL", "DEFAULT")


def parse_bf16(value: Any, key: str) -> Bf16Setting:
    """A ``bf16`` setting: true, false or "auto" (the hardware decides)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("auto", "true", "false"):
        text = value.strip().lower()
        return "auto" if text == "auto" else text == "true"
    raise SettingError(key, value, 'true, false or "auto" (bf16 where the hardware is fast at it)')


@dataclass(frozen=True)
class Precision:
    """Whether a stage computes in bfloat16, and why."""

    bf16: bool
    reason: str
    # Set when a forced bf16 will be slow on this hardware.
    warning: str | None = None

    @property
    def name(self) -> str:
        return "bf16" if self.bf16 else "fp32"

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.name, "bf16": self.bf16, "precision_reason": self.reason}


@dataclass(frozen=True)
class CpuInfo:
    """What the CPU offers for bf16 matmuls, as oneDNN will use it."""

    model: str
    amx: bool  # AMX bf16 tiles, allowed by ONEDNN_MAX_CPU_ISA
    avx512_bf16: bool  # native bf16 dot products, allowed by ONEDNN_MAX_CPU_ISA
    isa_cap: str | None  # ONEDNN_MAX_CPU_ISA when set

    def to_dict(self) -> dict[str, Any]:
        return {"cpu": self.model, "amx": self.amx, "avx512_bf16": self.avx512_bf16,
                "onednn_max_cpu_isa": self.isa_cap}  # fmt: skip


def _isa_allows(cap: str | None, isa: str) -> bool:
    if cap is None or cap.upper() in _NO_CAP:
        return True
    cap = cap.upper()
    if cap not in _ISA_ORDER:  # an unknown name: oneDNN ignores it, so do we
        return True
    return _ISA_ORDER.index(cap) >= _ISA_ORDER.index(isa)


def read_cpu_info(cpuinfo: str | None = None, environ: dict[str, str] | None = None) -> CpuInfo:
    """The CPU's model and bf16 capabilities from ``/proc/cpuinfo`` (or the text given)."""
    environ = os.environ if environ is None else environ
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.is_file() else ""
    flags: set[str] = set()
    model = "unknown CPU"
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if name == "flags" and not flags:
            flags = set(value.split())
        elif name == "model name" and model == "unknown CPU":
            model = value.strip()
    cap = environ.get("ONEDNN_MAX_CPU_ISA") or environ.get("DNNL_MAX_CPU_ISA") or None
    amx = {"amx_bf16", "amx_tile"} <= flags and _isa_allows(cap, "AVX512_CORE_AMX")
    native = ("avx512_bf16" in flags or amx) and _isa_allows(cap, "AVX512_CORE_BF16")
    return CpuInfo(model=model, amx=amx, avx512_bf16=native, isa_cap=cap)


@cache
def cpu_info() -> CpuInfo:
    """This machine's :func:`read_cpu_info` (read once per process)."""
    return read_cpu_info()


def _probe_seconds(bf16: bool, rounds: int = 5) -> float:
    """Best time of a transformer-sized MLP pass (1024 tokens, 576 -> 1536 -> 576) on CPU."""
    generator = torch.Generator().manual_seed(0)
    weights = [
        torch.randn(1536, 576, generator=generator),
        torch.randn(576, 1536, generator=generator),
    ]
    x = torch.randn(1024, 576, generator=generator)
    best = float("inf")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(rounds + 1):  # the first pass pays oneDNN's kernel selection
            started = time.perf_counter()
            torch.nn.functional.linear(torch.nn.functional.linear(x, weights[0]), weights[1])
            best = min(best, time.perf_counter() - started)
    return best


@cache
def bf16_speedup_probe() -> float:
    """fp32 time / bf16 time of the same small matmuls on this CPU (> 1: bf16 is faster).
    Interleaved twice, so a neighbour's load hits both precisions alike; once per process."""
    fp32 = min(_probe_seconds(False), _probe_seconds(False))
    bf16 = min(_probe_seconds(True), _probe_seconds(True))
    return fp32 / bf16


# bf16 must beat fp32 by this factor in the probe: a tie goes to fp32, the exact one.
PROBE_MARGIN = 1.15


def cpu_bf16_is_fast(
    cpu: CpuInfo, probe: Callable[[], float] = bf16_speedup_probe
) -> tuple[bool, str]:
    """Whether bf16 autocast beats fp32 on ``cpu``, and how that was decided."""
    if cpu.amx:
        return True, "AMX"
    if not cpu.avx512_bf16:
        return False, "no native bf16 (no AVX512-BF16, no AMX)"
    speedup = probe()
    verdict = "faster" if speedup >= PROBE_MARGIN else "not faster"
    return speedup >= PROBE_MARGIN, (
        f"AVX512-BF16 without AMX; a matmul probe ran bf16 {speedup:.2f}x the speed of fp32, "
        f"{verdict}"
    )


def choose_precision(
    setting: Bf16Setting, device: torch.device | str, key: str, cpu: CpuInfo | None = None
) -> Precision:
    """bf16 or fp32 for work on ``device``; ``key`` names the setting in messages.

    ``"auto"`` takes bf16 where the hardware is fast at it. A forced ``true`` where it is
    not is honoured, with a ``warning`` that says what it costs (logged by
    :func:`use_precision`).
    """
    device = torch.device(device)
    if device.type == "cuda":
        fast = torch.cuda.is_bf16_supported()
        where = f"CUDA device {torch.cuda.get_device_name(device)}"
        why = "native bf16" if fast else "no native bf16: it is emulated and slow"
    else:
        cpu = cpu or cpu_info()
        fast, why = cpu_bf16_is_fast(cpu)
        where = f"CPU {cpu.model}"
    if setting == "auto":
        return Precision(fast, f"auto on {where} ({why}): {'bf16' if fast else 'fp32'}")
    if setting and not fast:
        warning = (
            f"{key} = true, but bf16 is slower than fp32 on {where} ({why}); "
            f"set {key}: auto (or false) to compute in fp32"
        )
        return Precision(True, f"forced by {key} on {where} ({why})", warning)
    return Precision(bool(setting), f"forced by {key} on {where}")


ModelDtype = Literal["auto", "fp32", "bf16", "fp16", "int8"]
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def model_dtype(
    setting: ModelDtype, bf16: bool, device: torch.device | str, key: str
) -> torch.dtype:
    """The dtype a model's weights are loaded in on ``device``; ``bf16`` is the resolved
    precision. "auto": bf16 on a GPU that computes in bf16, fp32 elsewhere (a CPU keeps
    fp32 weights and autocasts). Half weights are refused on a CPU: its training and
    scoring paths autocast instead. "int8": the linear layers in 8 bit (bitsandbytes),
    the rest in the dtype returned (bf16 or fp16 on a GPU, fp32 on a CPU)."""
    device = torch.device(device)
    if setting == "int8":
        check_int8_available(key)
        if device.type != "cuda":
            logger.warning("%s = int8 on a CPU: bitsandbytes' CPU kernels are slow; 8-bit "
                           "weights are meant for GPUs short of memory", key)  # fmt: skip
            return torch.float32
        return torch.bfloat16 if bf16 else torch.float16
    if setting == "auto":
        return torch.bfloat16 if device.type == "cuda" and bf16 else torch.float32
    if setting != "fp32" and device.type != "cuda":
        raise SettingError(
            key, setting, "fp32, int8 or auto on a CPU",
            "half-precision weights need a CUDA GPU; for bf16 compute on a CPU set bf16: true",
        )  # fmt: skip
    return _DTYPES[setting]


def check_int8_available(key: str) -> None:
    """8-bit weights need the bitsandbytes package; a :class:`SettingError` without it."""
    if importlib.util.find_spec("bitsandbytes") is None:
        raise SettingError(key, "int8", "fp32, bf16, fp16 or auto without bitsandbytes",
                           "8-bit weights need bitsandbytes: pip install bitsandbytes")  # fmt: skip


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Threads:
    """The intra-op thread count a stage uses, and why."""

    count: int
    reason: str
    # Set when the setting asked for more threads than there are cores.
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"torch_threads": self.count, "threads_reason": self.reason}


def choose_threads(setting: int | None, key: str, cores: int | None = None) -> Threads:
    """Threads for torch's intra-op pool: ``setting``, capped at the cores this process may
    use, or all of them when ``setting`` is None (measured best on a quiet machine: see
    docs/benchmarks.md, "Threads"). Does not apply it: see :func:`use_threads`."""
    cores = cores or available_cores()
    if setting is None:
        return Threads(cores, f"default: one per available core ({cores})")
    if setting > cores:
        warning = (
            f"{key} = {setting}, but this process may use {cores} cores: using {cores} threads"
        )
        return Threads(cores, f"{key} = {setting} capped at the {cores} available cores", warning)
    return Threads(setting, f"set by {key}")


def use_threads(setting: int | None, key: str) -> Threads:
    """:func:`choose_threads`, applied to torch and logged (with its warning, if any)."""
    threads = choose_threads(setting, key)
    if threads.warning:
        logger.warning(threads.warning)
    torch.set_num_threads(threads.count)
    logger.info("torch threads: %d (%s)", threads.count, threads.reason)
    return threads


def use_precision(setting: Bf16Setting, device: torch.device | str, key: str) -> Precision:
    """:func:`choose_precision`, logged (with its warning, if any)."""
    precision = choose_precision(setting, device, key)
    if precision.warning:
        logger.warning(precision.warning)
    logger.info("precision: %s (%s)", precision.name, precision.reason)
    return precision


def compute_facts(precision: Precision, threads: Threads) -> dict[str, Any]:
    """What a stage's report says about how it computed: precision, threads and the CPU."""
    return {**precision.to_dict(), **threads.to_dict(), **cpu_info().to_dict()}


def process_facts(precision: Precision) -> dict[str, Any]:
    """:func:`compute_facts` with the threads torch uses in this process (set by the node,
    or by the launcher for a launched training process)."""
    return compute_facts(precision, Threads(torch.get_num_threads(), "as set in this process"))
