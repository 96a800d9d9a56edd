"""Each stage's settings class, and parsing every parameter group a run uses at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reclora_pipeline.ctr.settings import CtrLensSettings
from reclora_pipeline.evaluation.settings import EvaluationSettings
from reclora_pipeline.few2many.settings import Few2ManySettings
from reclora_pipeline.finetune.settings import FinetuneStageSettings
from reclora_pipeline.ingest.settings import IngestSettings
from reclora_pipeline.item_text.settings import ItemTextSettings
from reclora_pipeline.predict.settings import PredictSettings
from reclora_pipeline.typed_settings import parse

# Parameter group (= pipeline name) -> the settings class it is parsed into.
STAGE_SETTINGS: dict[str, type] = {
    "ingest": IngestSettings,
    "item_text": ItemTextSettings,
    "ctr_lens": CtrLensSettings,
    "few2many": Few2ManySettings,
    "finetune": FinetuneStageSettings,
    "evaluation": EvaluationSettings,
    # Not a stage of ``full``: scores a candidates file with a trained arm.
    "predict": PredictSettings,
}
PARAMS_PREFIX = "params:"


def parse_groups(parameters: Mapping[str, Any], groups: Iterable[str]) -> dict[str, Any]:
    """Each of ``groups`` parsed from ``parameters``; the first bad key raises, naming it."""
    return {
        group: parse(STAGE_SETTINGS[group], parameters.get(group, {}), group) for group in groups
    }
