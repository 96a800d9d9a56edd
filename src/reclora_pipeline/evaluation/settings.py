"""Settings of the evaluation stage (the ``evaluation`` parameter group)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

from reclora_pipeline.compute import Bf16Setting, parse_bf16
from reclora_pipeline.errors import SettingError
from reclora_pipeline.finetune.settings import LaunchSettings
from reclora_pipeline.typed_settings import check_fields, setting

CrmName = Literal["din", "sim", "deepfm"]


@dataclass(frozen=True)
class EvaluationSettings:
    """How the LLMs are scored and how every model is compared on the test rows."""

    batch_size: int = setting(16, minimum=1)
    # inline = score in the kedro process; deepspeed = split the rows over the processes of
    # the `deepspeed` launcher (num_gpus GPUs, or the machines of hostfile), as finetune.launch.
    launch: LaunchSettings = setting(default_factory=LaunchSettings)
    # true | false | "auto": bf16 where the hardware is fast at it (AMX CPUs, CUDA with bf16).
    bf16: Bf16Setting = setting("auto", parse=parse_bf16)
    # None = one thread per available core; more than the cores is capped with a warning.
    torch_threads: int | None = setting(None, minimum=1)
    # The CRMs compared with the LLMs; the first is the bar in plots and comparisons.
    crms: tuple[CrmName, ...] = ("din", "sim", "deepfm")
    n_bootstrap: int = setting(1000, minimum=1)
    # What the bootstrap resamples: "user" (whole users, the honest unit: a user's rows are
    # not independent) or "row" (every test row on its own; narrower, too narrow).
    bootstrap_unit: Literal["user", "row"] = "user"
    ci_level: float = 0.95
    seed: int = setting(0, minimum=0)
    # L2 strengths tried by the lens_readout baseline (a logistic regression on user_repr);
    # the one with the best valid AUC scores the test rows.
    lens_readout_l2: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)
    # Lower edges of the history-length buckets of the AUC-by-history plot (last = open).
    history_buckets: tuple[int, ...] = (5, 10, 20, 40, 60)

    def __post_init__(self) -> None:
        check_fields(self)
        if not 0.0 < self.ci_level < 1.0:
            raise SettingError("ci_level", self.ci_level, "a number strictly between 0 and 1")
        if not self.crms or len(set(self.crms)) != len(self.crms):
            raise SettingError("crms", list(self.crms), "a non-empty list of distinct CRM names")
        if not self.lens_readout_l2 or min(self.lens_readout_l2) < 0:
            raise SettingError(
                "lens_readout_l2", list(self.lens_readout_l2), "a non-empty list of numbers >= 0"
            )
        edges = self.history_buckets
        if not edges or edges[0] < 0 or any(b <= a for a, b in itertools.pairwise(edges)):
            raise SettingError(
                "history_buckets", list(edges), "increasing non-negative integers, e.g. [5, 10, 20]"
            )
