"""The description of a model that a checkpoint stores and `build_model` turns back into a network."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a network (its weights come separately)."""

    arch: str
    num_classes: int
    in_channels: int
    input_size: tuple[int, int]  # (H, W) of the images the model takes, before its own padding
    width: float = 1.0
    modular: bool = True
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    pad: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(
            arch=str(d["arch"]),
            num_classes=int(d["num_classes"]),
            in_channels=int(d["in_channels"]),
            input_size=(int(d["input_size"][0]), int(d["input_size"][1])),
            width=float(d["width"]),
            modular=bool(d["modular"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
            pad=int(d["pad"]),
            extra=dict(d.get("extra", {})),
        )


def scaled(channels: int, width: float) -> int:
    """A channel count scaled by the width multiplier, never below 1."""
    return max(1, int(round(channels * width)))
