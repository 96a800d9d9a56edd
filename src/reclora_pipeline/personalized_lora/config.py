"""Configuration of the personalized (RecLoRA) LoRA bank."""

from __future__ import annotations

import difflib
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from reclora_pipeline.errors import SettingError, UnknownSettingError

Mixing = Literal["parameter", "output"]
Routing = Literal["soft", "topk"]
MIXING_MODES: tuple[str, ...] = ("parameter", "output")
ROUTING_MODES: tuple[str, ...] = ("soft", "topk")


@dataclass(frozen=True)
class PersonalizedLoraConfig:
    """Hyper-parameters of a bank of meta-LoRAs mixed per sample by a user gate.

    Defaults follow the RecLoRA reference setting: 8 meta-LoRAs of rank 8 on the
    query and value projections, a 60-unit gate fed by a 256-d user representation.
    """

    n_experts: int = 8
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    # Module names (last path component); Llama/Qwen/SmolLM2 call them q_proj and v_proj.
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    user_dim: int = 256
    gate_hidden: int = 60
    gate_dropout: float = 0.1
    temperature: float = 1.0
    # "parameter" mixes the factors (reference code); "output" mixes expert outputs (paper).
    mixing: Mixing = "parameter"
    # "soft" uses all experts; "topk" keeps the top_k largest weights, renormalised.
    routing: Routing = "soft"
    top_k: int = 2

    def __post_init__(self) -> None:
        # A list given by a caller (or read back from JSON) becomes a tuple so the
        # dataclass stays hashable and immutable.
        modules = self.target_modules
        # A bare string would otherwise become a tuple of single characters.
        modules = (modules,) if isinstance(modules, str) else tuple(modules)
        object.__setattr__(self, "target_modules", modules)
        self._validate()

    def _validate(self) -> None:
        # SettingError names the field only: the settings parser adds the group's path.
        for name in ("n_experts", "r", "user_dim", "gate_hidden"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise SettingError(name, value, "an integer >= 1")
        for name in ("alpha", "temperature"):
            value = getattr(self, name)
            if not _is_number(value) or value <= 0:
                raise SettingError(name, value, "a number > 0")
        for name in ("dropout", "gate_dropout"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value < 1.0:
                raise SettingError(name, value, "a number in [0, 1)")
        if not self.target_modules or not all(
            isinstance(m, str) and m for m in self.target_modules
        ):
            raise SettingError(
                "target_modules", list(self.target_modules), "a non-empty list of module names"
            )
        if self.mixing not in MIXING_MODES:
            raise SettingError("mixing", self.mixing, _one_of(MIXING_MODES))
        if self.routing not in ROUTING_MODES:
            raise SettingError("routing", self.routing, _one_of(ROUTING_MODES))
        if self.routing == "topk" and (
            not _is_int(self.top_k) or not 1 <= self.top_k <= self.n_experts
        ):
            raise SettingError(
                "top_k", self.top_k, f"an integer in [1, n_experts={self.n_experts}]"
            )

    @property
    def gate_top_k(self) -> int | None:
        """Number of experts kept per sample by the gate, None for soft routing."""
        return self.top_k if self.routing == "topk" else None

    @property
    def scaling(self) -> float:
        """LoRA scale ``alpha / r`` applied to the low-rank update."""
        return self.alpha / self.r

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples become lists)."""
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersonalizedLoraConfig:
        """Build from :meth:`to_dict` output; unknown keys are an error, not ignored."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            key = unknown[0]
            closest = difflib.get_close_matches(key, known, n=1)
            raise UnknownSettingError(key, closest[0] if closest else None, known)
        return cls(**data)


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but true/false is no count.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _one_of(choices: tuple[str, ...]) -> str:
    return "one of " + ", ".join(repr(choice) for choice in choices)
