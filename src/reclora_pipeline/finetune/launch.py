"""Where a fine-tune runs: in this process, or in every process of the ``deepspeed`` launcher.

``finetune`` runs a :class:`FinetuneRequest` inline, or writes it and the Few2Many rows
into a run folder, starts ``deepspeed ... --module reclora_pipeline.finetune.launch
--run-dir`` as a subprocess (each process reads the same request back) and returns what
rank 0 wrote: the adapter and the report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from reclora_pipeline.compute import available_cores, choose_threads
from reclora_pipeline.errors import ParameterError
from reclora_pipeline.finetune.deepspeed_setup import free_port
from reclora_pipeline.finetune.request import FinetuneRequest
from reclora_pipeline.finetune.run import run_request
from reclora_pipeline.finetune.settings import LaunchSettings

REQUEST_FILE = "request.json"
ROWS_FILE = "few2many_samples.parquet"
REPORT_FILE = "report.json"
ADAPTER_FOLDER = "adapter"
# Per-process training rows and valid scores (finetune.run.train_arm's record_dir).
RECORD_FOLDER = "record"


def finetune(
    request: FinetuneRequest,
    rows: pa.Table,
    launch: LaunchSettings,
    work_dir: Path,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Run ``request`` as ``launch`` says; the adapter folder (in ``work_dir``) and the report."""
    if launch.launcher == "inline":
        adapter = work_dir / ADAPTER_FOLDER
        return adapter, run_request(request, rows, adapter, on_epoch_end=on_epoch_end)
    write_request(work_dir, request, rows)
    return work_dir / ADAPTER_FOLDER, run_launcher(work_dir, launch.num_gpus, launch.hostfile)


def write_request(run_dir: Path, request: FinetuneRequest, rows: pa.Table) -> None:
    """Materialise the inputs every launched process reads."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / REQUEST_FILE).write_text(json.dumps(request.to_dict(), indent=2))
    pq.write_table(rows, run_dir / ROWS_FILE)


def deepspeed_command() -> str | None:
    """The ``deepspeed`` launcher of this interpreter's environment (found even when the
    virtual environment is not activated, as under ``make``), else the one on PATH."""
    beside = Path(sys.executable).with_name("deepspeed")
    return str(beside) if beside.is_file() else shutil.which("deepspeed")


def launcher_command(
    run_dir: Path, num_gpus: int, hostfile: str | None, module: str = __name__
) -> list[str]:
    """The ``deepspeed`` command line that runs ``module --run-dir run_dir`` in every
    process: ``--num_gpus`` on one machine, or a hostfile."""
    executable = deepspeed_command()
    if executable is None:
        raise ParameterError(
            "finetune.launch.launcher: deepspeed needs the `deepspeed` command on PATH "
            "(pip install deepspeed), or set finetune.launch.launcher: inline"
        )
    if hostfile:
        if not Path(hostfile).is_file():
            raise ParameterError(f"finetune.launch.hostfile {hostfile!r} does not exist")
        placement = ["--hostfile", hostfile]
    else:
        if isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 1:
            raise ParameterError(
                f"finetune.launch.num_gpus must be a positive integer, got {num_gpus!r}"
            )
        # A free port: the launcher's default (29500) may be held by another job.
        placement = ["--num_gpus", str(num_gpus), "--master_port", str(free_port())]
    return [executable, *placement, "--module", module, "--run-dir", str(run_dir)]


def start_launcher(
    run_dir: Path, num_gpus: int, hostfile: str | None, module: str = __name__
) -> None:
    """Run ``module`` in every process of the launcher, to completion."""
    command = launcher_command(run_dir, num_gpus, hostfile, module)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"the deepspeed launcher failed with exit code {result.returncode}: "
            f"{' '.join(command)} (its output is above)"
        )


def run_launcher(run_dir: Path, num_gpus: int, hostfile: str | None) -> dict[str, Any]:
    """Train in every process of the launcher; the report rank 0 wrote."""
    start_launcher(run_dir, num_gpus, hostfile)
    return json.loads((run_dir / REPORT_FILE).read_text())


def share_cores() -> None:
    """Without GPUs, the launched processes of one machine share its cores rather than
    each taking all of them (2 processes x 2 threads on 2 cores thrash)."""
    if torch.cuda.is_available():
        return
    per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    threads = choose_threads(max(1, available_cores() // max(per_machine, 1)), "threads")
    torch.set_num_threads(threads.count)


def run_launched_process(run_dir: Path) -> dict[str, Any]:
    """Train as one process of the launched job; rank 0 writes the adapter and report."""
    request = FinetuneRequest.from_dict(json.loads((run_dir / REQUEST_FILE).read_text()))
    rank = int(os.environ.get("RANK", "0"))
    share_cores()
    report = run_request(
        request,
        pq.read_table(run_dir / ROWS_FILE),
        run_dir / ADAPTER_FOLDER,
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        progress=rank == 0,
        record_dir=run_dir / RECORD_FOLDER,
    )
    if rank == 0:
        (run_dir / REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report


def launched_main(
    run: Callable[[Path], Any], description: str, argv: list[str] | None = None
) -> None:
    """The entry point of a launched module: ``run(--run-dir)`` in this process."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--run-dir", type=Path, required=True)
    # The launcher appends --local_rank=N; the rank is read from the environment instead.
    parser.add_argument("--local_rank", type=int, default=None)
    run(parser.parse_args(argv).run_dir)


def main(argv: list[str] | None = None) -> None:
    launched_main(run_launched_process, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
