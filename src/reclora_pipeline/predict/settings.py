"""Settings of the predict pipeline (the ``predict`` parameter group)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reclora_pipeline.compute import Bf16Setting, parse_bf16
from reclora_pipeline.errors import SettingError
from reclora_pipeline.finetune.arms import ARMS
from reclora_pipeline.finetune.settings import LaunchSettings
from reclora_pipeline.typed_settings import check_fields, setting

# Arms whose gate input cannot be rebuilt for new rows, and why.
UNSUPPORTED_ARMS = {
    "reclora_no_few2many": "its gates read a lens CRM that the finetune stage retrains on the "
    "Few2Many train rows and does not save, so new rows have no user representation",
}
CANDIDATE_SUFFIXES = (".parquet", ".pq", ".csv")


@dataclass(frozen=True)
class PredictSettings:
    """Which file to score, with which trained arm, and how the LLM scores it."""

    # The candidates file (.parquet or .csv: user_id, item_id, optional timestamp, in the
    # data set's own ids); required by the predict pipeline, so null is allowed only here.
    candidates: str | None = None
    # The trained arm that scores (finetune's adapter_<arm>).
    arm: str = "reclora"
    # Prompts per scoring batch (sorted by length). Equal to evaluation.batch_size, the
    # same rows get the same batches, hence the very scores of the evaluation.
    batch_size: int = setting(16, minimum=1)
    # inline = score in the kedro process; deepspeed = split the rows over the processes of
    # the `deepspeed` launcher (num_gpus GPUs, or the machines of hostfile), as finetune.launch.
    launch: LaunchSettings = setting(default_factory=LaunchSettings)
    # true | false | "auto": bf16 where the hardware is fast at it (as evaluation.bf16).
    bf16: Bf16Setting = setting("auto", parse=parse_bf16)
    # None = one thread per available core; more than the cores is capped with a warning.
    torch_threads: int | None = setting(None, minimum=1)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.candidates is not None and not self.candidates.strip():
            object.__setattr__(self, "candidates", None)
        suffix = None if self.candidates is None else Path(self.candidates).suffix.lower()
        if suffix is not None and suffix not in CANDIDATE_SUFFIXES:
            raise SettingError(
                "candidates", self.candidates, f"a file ending in {' or '.join(CANDIDATE_SUFFIXES)}"
            )
        if self.arm not in ARMS:
            raise SettingError("arm", self.arm, f"one of {', '.join(ARMS)}")
        if self.arm in UNSUPPORTED_ARMS:
            raise SettingError(
                "arm", self.arm, "an arm whose user input can be rebuilt for new rows",
                UNSUPPORTED_ARMS[self.arm],
            )  # fmt: skip

    def candidates_path(self) -> Path:
        """The candidates file; a :class:`SettingError` when ``predict.candidates`` is unset."""
        if self.candidates is None:
            raise SettingError(
                "predict.candidates", None, "the path of a .parquet or .csv file with the "
                "columns user_id, item_id and optionally timestamp",
                "run `kedro run --pipeline predict --params predict.candidates=<file>`",
            )  # fmt: skip
        return Path(self.candidates)
