"""Configuration of the personalized (RecLoRA) LoRA bank."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

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
        positive = {
            "n_experts": self.n_experts,
            "r": self.r,
            "user_dim": self.user_dim,
            "gate_hidden": self.gate_hidden,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {self.alpha!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        for name in ("dropout", "gate_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if not self.target_modules or not all(
            isinstance(m, str) and m for m in self.target_modules
        ):
            raise ValueError(f"target_modules must be non-empty names, got {self.target_modules!r}")
        if self.mixing not in MIXING_MODES:
            raise ValueError(f"mixing must be one of {MIXING_MODES}, got {self.mixing!r}")
        if self.routing not in ROUTING_MODES:
            raise ValueError(f"routing must be one of {ROUTING_MODES}, got {self.routing!r}")
        if self.routing == "topk" and not 1 <= self.top_k <= self.n_experts:
            raise ValueError(
                f"top_k must be in [1, n_experts={self.n_experts}], got {self.top_k!r}"
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
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PersonalizedLoraConfig keys: {unknown}")
        return cls(**data)
