"""Settings of the ctr_lens stage (the ``ctr_lens`` parameter group)."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Literal

import torch

from reclora_pipeline.ctr.long_history import HistoryView, LongHistorySearch
from reclora_pipeline.ctr.registry import CTR_MODELS
from reclora_pipeline.ctr.training import TrainConfig
from reclora_pipeline.errors import SettingError, UnknownSettingError
from reclora_pipeline.item_text.retrieval import normalised_table
from reclora_pipeline.typed_settings import check_fields, parse, setting

CrmName = Literal["din", "sim", "deepfm"]
LongRetrieval = Literal["recency", "semantic", "genre"]
Similarity = Literal["cosine", "dot"]
# Every CRM is trained (the comparison needs them all); ``crm`` picks the lens.
TRAINED_CRMS: tuple[str, ...] = ("din", "sim", "deepfm")


@dataclass(frozen=True)
class CrmTraining:
    """AdamW and early stopping on valid AUC, shared by the CRMs unless a model overrides it."""

    lr: float = setting(1e-3, above=0)
    weight_decay: float = setting(1e-4, minimum=0)
    batch_size: int = setting(512, minimum=1)
    max_epochs: int = setting(3, minimum=1)
    patience: int = setting(1, minimum=0)
    # Benchmark knob (benchmarks/pipeline_scale.py): optimizer steps per epoch at most;
    # null = every batch of the train split. Not for real runs: a capped epoch sees only
    # part of the data.
    max_steps_per_epoch: int | None = setting(None, minimum=1)
    # Benchmark knob: score at most this many valid and test rows (a fixed random subset)
    # for early stopping and the metrics; null = all. Not for real runs: the metrics then
    # come from part of each split.
    max_eval_rows: int | None = setting(None, minimum=1)
    # Progress bars per epoch (off in tests and logs that capture output).
    progress: bool = True

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class CrmOverrides:
    """One model's constructor options and the training keys it sets differently."""

    options: dict[str, Any] = setting(default_factory=dict)
    training: dict[str, Any] = setting(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class CtrLensSettings:
    """Which CRM is the lens, the behaviour sequences it reads and how the CRMs train."""

    crm: CrmName = "din"
    seed: int = setting(0, minimum=0)
    # The recent window (DIN, DeepFM, SIM's short branch): the newest max_history items.
    max_history: int = setting(60, minimum=1)
    # SIM's long list (the CRM side of the retriever): k_crm items picked by crm_retrieval
    # from the newest lifelong_max_history earlier interactions (ctr.long_history).
    k_crm: int = setting(60, minimum=1)
    crm_retrieval: LongRetrieval = "recency"
    lifelong_max_history: int = setting(60, minimum=1)
    # Item-embedding similarity of crm_retrieval=semantic.
    similarity: Similarity = "cosine"
    # None = one thread per available core; more than the cores is capped with a warning.
    torch_threads: int | None = setting(None, minimum=1)
    training: CrmTraining = setting(default_factory=CrmTraining)
    models: dict[str, CrmOverrides] = setting(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.lifelong_max_history < self.k_crm:
            raise SettingError(
                "lifelong_max_history",
                self.lifelong_max_history,
                f"at least k_crm ({self.k_crm})",
                "SIM picks its k_crm items out of that many earlier interactions",
            )
        for name, overrides in self.models.items():
            if name not in CTR_MODELS:
                raise UnknownSettingError(
                    f"models.{name}", None, [f"models.{m}" for m in CTR_MODELS]
                )
            accepted = list(inspect.signature(CTR_MODELS[name]).parameters)[1:]  # after vocab
            for key in overrides.options:
                if key not in accepted:
                    close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
                    raise UnknownSettingError(
                        f"models.{name}.options.{key}",
                        f"models.{name}.options.{close[0]}" if close else None,
                        [f"models.{name}.options.{option}" for option in accepted],
                    )
            # Parsing the merged block checks the override keys and values.
            self.train_config(name)

    def train_config(self, name: str) -> TrainConfig:
        """The training settings of CRM ``name``: shared ones, then its overrides."""
        overrides = self.models.get(name, CrmOverrides()).training
        merged = {**dataclasses.asdict(self.training), **overrides}
        checked = parse(CrmTraining, merged, f"models.{name}.training")
        return TrainConfig(**dataclasses.asdict(checked), seed=self.seed)

    def history_view(
        self, item_vectors: torch.Tensor | None = None, item_genres: torch.Tensor | None = None
    ) -> HistoryView:
        """What a batch gathers under these settings; ``item_vectors`` ([n_items + 2, d],
        raw) and ``item_genres`` serve the semantic and genre searches."""
        if item_vectors is not None:
            item_vectors = normalised_table(item_vectors.float().numpy(), self.similarity)
        search = LongHistorySearch(
            k=self.k_crm,
            scan=self.lifelong_max_history,
            strategy=self.crm_retrieval,
            item_vectors=item_vectors,
            item_genres=None if item_genres is None else item_genres.float(),
        )
        return HistoryView(max_history=self.max_history, long=search)

    def model_options(self, name: str) -> dict[str, Any]:
        """Constructor options of CRM ``name`` (empty = the model's defaults)."""
        return dict(self.models.get(name, CrmOverrides()).options)
