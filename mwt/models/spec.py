"""The description of a model that a checkpoint stores and `build_model` turns back into a network."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
    gate_first: bool = False  # gate the first conv too (MwT leaves it plain)
    # A compact network (a fine-tuned module): (layer, in, out) for every conv or linear layer
    # whose width differs from the architecture's. Empty for a full network.
    widths: tuple[tuple[str, int, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        d["widths"] = [list(w) for w in self.widths]
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
            gate_first=bool(d.get("gate_first", False)),
            widths=tuple((str(n), int(i), int(o)) for n, i, o in d.get("widths", [])),
        )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the model takes."""
        return (self.in_channels, *self.input_size)


def scaled(channels: int, width: float) -> int:
    """A channel count scaled by the width multiplier, never below 1."""
    return max(1, int(round(channels * width)))
