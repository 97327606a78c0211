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
    # A network from a constructor (arch "torchvision:<name>"): "cifar" adapts its stem to 32x32
    # inputs, `args` are the constructor's extra keyword arguments (plain values only).
    stem: str = "default"
    args: tuple[tuple[str, bool | int | float | str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        d["widths"] = [list(w) for w in self.widths]
        d["args"] = {k: v for k, v in self.args}
        if self.stem == "default" and not self.args:  # a registry model's description stays as it always was
            del d["stem"], d["args"]
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
            stem=str(d.get("stem", "default")),
            args=tuple(sorted((str(k), _plain_value(v)) for k, v in dict(d.get("args") or {}).items())),
        )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the model takes."""
        return (self.in_channels, *self.input_size)


def _plain_value(v: object) -> bool | int | float | str:
    """A constructor argument as stored: a bool, number or string, never anything else."""
    if not isinstance(v, (bool, int, float, str)):
        raise TypeError(f"constructor arguments must be plain values, not {type(v).__name__}")
    return v


def scaled(channels: int, width: float) -> int:
    """A channel count scaled by the width multiplier, never below 1."""
    return max(1, int(round(channels * width)))
