"""The mwt module file format: tensor names and the metadata every module carries, defined once.

The exporter writes it, `compose` writes it for a composed file, and the runtime, the server and
the Triton repository writer read it. ONNX keeps it as string key/value pairs
(`metadata_props`); `ModuleMetadata.to_props` / `from_props` are the only code that knows the keys.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import onnx

from mwt import __version__
from mwt.core.errors import MwtError
from mwt.core.names import check_class_names

FORMAT = "mwt-module/1"
INPUT = "input"  # the image batch, (N, C, H, W) float32 in [0, 1]
LOGITS = "logits"  # (N, classes) float32, the module's classes in metadata order
PROBABILITIES = "probabilities"  # composed files: softmax over the logits
LABEL = "label"  # composed files: (N,) int64 index of the predicted class
RESIZE_METHODS = ("bilinear", "bicubic", "nearest", "lanczos", "box")  # Pillow's, as `predict` resizes images
# Every op mwt's compiler, its precision passes and `compose` emit, all in the default ONNX
# domain. A module file may hold only these: no control flow (Loop, If, Scan), no subgraphs, no
# local functions and no other domain, so no file can make a session run without end.
MODULE_OPS = frozenset({
    "Add", "ArgMax", "Cast", "Concat", "Constant", "Conv", "DequantizeLinear", "Div", "Flatten", "Gemm",
    "GlobalAveragePool", "Identity", "MatMul", "MaxPool", "Mul", "Pad", "QuantizeLinear", "ReduceMean", "Relu",
    "Reshape", "Softmax", "Sub", "Tanh", "Unsqueeze",
    # the activations and pools of torchvision's networks (MobileNet's ReLU6 is a Clip, SiLU a Sigmoid and a Mul)
    "AveragePool", "Clip", "Elu", "HardSigmoid", "HardSwish", "LeakyRelu", "Selu", "Sigmoid", "Softplus",
})


class GateMode(str, Enum):
    """How a module computes its kernel gates."""

    dynamic = "dynamic"  # the pruned mask generators stay: exactly the full modular model on retained kernels
    folded = "folded"  # each gate is a per-kernel constant (the classes' mean gate), folded into the weights


class Precision(str, Enum):
    """Numeric precision of a module's weights and compute (its inputs and outputs stay float32)."""

    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"
    mixed = "mixed"  # a composed file whose modules differ (each part says its own)


@dataclass(frozen=True)
class InputSpec:
    """What a module takes: images of `shape` (C, H, W) with values in `range`, resized with `resize`."""

    shape: tuple[int, int, int]
    range: tuple[float, float] = (0.0, 1.0)
    dtype: str = "float32"
    dataset: str = ""
    resize: str = "bilinear"  # how `predict` and `serve` bring an image of another size to `shape`
    name: str = INPUT

    @property
    def channels(self) -> int:
        return self.shape[0]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "channels": self.channels, "range": list(self.range),
                "dtype": self.dtype, "dataset": self.dataset, "resize": self.resize}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        shape = tuple(int(v) for v in d["shape"])
        if len(shape) != 3 or min(shape) < 1 or max(shape) > 1 << 14:
            raise ValueError(f"input shape {list(shape)} is not (C, H, W)")
        low, high = (float(v) for v in d.get("range", (0.0, 1.0)))
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError("input range is not a finite interval")
        if str(d.get("resize", "bilinear")) not in RESIZE_METHODS or str(d.get("dtype", "float32")) != "float32":
            raise ValueError("the input's resize method or dtype is not one mwt knows")
        return cls(shape=shape, range=(low, high), dtype=str(d.get("dtype", "float32")),  # type: ignore[arg-type]
                   dataset=str(d.get("dataset", "")), resize=str(d.get("resize", "bilinear")),
                   name=str(d.get("name", INPUT)))


@dataclass(frozen=True)
class LayerKeep:
    """Kernels a module keeps of one gated layer."""

    name: str
    retained: int
    total: int


@dataclass(frozen=True)
class ModuleMetadata:
    """Everything a module file says about itself.

    FLOPs are per sample. `full_flops` is the full modular model (gate generators included),
    `plain_flops` the same architecture without gates: what a user would otherwise deploy, and
    the baseline that `flops_kept` and speedups are quoted against. A composed file lists its
    modules in `parts` and leaves the per-module fields empty.
    """

    classes: tuple[str, ...]
    input: InputSpec
    source_sha256: str = ""
    module_flops: int = 0
    full_flops: int = 0
    plain_flops: int = 0
    module_params: int = 0
    full_params: int = 0
    threshold: float | None = None
    gates: GateMode | None = None  # None: a gate-free network (a plain model, or a fine-tuned module)
    align: int | None = None
    rounding: str | None = None  # how each layer met the alignment: "up", "nearest" or "down" (mwt.selection)
    krr: float | None = None
    layers: tuple[LayerKeep, ...] = ()
    precision: Precision = Precision.fp32
    folding_error: float | None = None  # folded gates: RMS miss of the constant gates (worst layer)
    calibration: dict[str, Any] | None = None  # INT8: how the activation ranges were calibrated
    finetune: dict[str, Any] | None = None  # a fine-tuned module: its source checkpoint and settings
    # How the module was made: "data-free" (cut from the modularization alone, no images) or
    # "fine-tuned" (a gate-free network trained on its classes' images); None for whole models.
    origin: str | None = None
    parts: tuple[dict[str, Any], ...] = ()
    version: str = __version__

    @property
    def flops_kept(self) -> float | None:
        """Module FLOPs as a fraction of the plain full model's (None where unknown)."""
        return self.module_flops / self.plain_flops if self.plain_flops else None

    def to_props(self) -> dict[str, str]:
        """The ONNX metadata_props entries (absent optional fields are left out)."""
        props = {
            "mwt.format": FORMAT,
            "mwt.version": self.version,
            "mwt.classes": json.dumps(list(self.classes)),
            "mwt.input": json.dumps(self.input.to_dict()),
            "mwt.source_sha256": self.source_sha256,
            "mwt.module_flops": str(self.module_flops),
            "mwt.full_flops": str(self.full_flops),
            "mwt.plain_flops": str(self.plain_flops),
            "mwt.module_params": str(self.module_params),
            "mwt.full_params": str(self.full_params),
            "mwt.precision": self.precision.value,
        }
        optional = {
            "mwt.threshold": None if self.threshold is None else repr(self.threshold),
            "mwt.gates": None if self.gates is None else self.gates.value,
            "mwt.align": None if self.align is None else str(self.align),
            "mwt.rounding": self.rounding,
            "mwt.krr": None if self.krr is None else f"{self.krr:.6f}",
            "mwt.layers": json.dumps([[k.name, k.retained, k.total] for k in self.layers]) if self.layers else None,
            "mwt.folding_error": None if self.folding_error is None else f"{self.folding_error:.6f}",
            "mwt.calibration": None if self.calibration is None else json.dumps(self.calibration),
            "mwt.finetune": None if self.finetune is None else json.dumps(self.finetune),
            "mwt.parts": json.dumps(list(self.parts)) if self.parts else None,
            "mwt.origin": self.origin,
        }
        props.update({k: v for k, v in optional.items() if v is not None})
        return props

    @classmethod
    def from_props(cls, props: dict[str, str], label: str = "the model") -> ModuleMetadata:
        """Parse and check metadata_props; MwtError names what is missing or damaged."""
        if not props.get("mwt.format", "").startswith("mwt-module/"):
            raise MwtError(f"{label} is an ONNX model but not an mwt module (no mwt metadata); export one with mwt-export")
        if props["mwt.format"] != FORMAT:
            raise MwtError(f"{label} is in module format {props['mwt.format']}; this mwt reads {FORMAT}")
        try:
            classes = json.loads(props["mwt.classes"])
            if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
                raise ValueError("the class list is not a list of names")

            def optional(key: str, parse: Any) -> Any:
                return parse(props[key]) if key in props else None

            meta = cls(
                classes=tuple(classes),
                input=InputSpec.from_dict(json.loads(props["mwt.input"])),
                source_sha256=props.get("mwt.source_sha256", ""),
                module_flops=_count(props.get("mwt.module_flops", "0")),
                full_flops=_count(props.get("mwt.full_flops", "0")),
                plain_flops=_count(props.get("mwt.plain_flops", "0")),
                module_params=_count(props.get("mwt.module_params", "0")),
                full_params=_count(props.get("mwt.full_params", "0")),
                threshold=optional("mwt.threshold", float),
                gates=optional("mwt.gates", GateMode),
                align=optional("mwt.align", int),
                rounding=optional("mwt.rounding", _rounding),
                krr=optional("mwt.krr", float),
                layers=tuple(LayerKeep(str(n), int(r), int(t)) for n, r, t in json.loads(props.get("mwt.layers", "[]"))),
                precision=Precision(props.get("mwt.precision", "fp32")),
                folding_error=optional("mwt.folding_error", float),
                calibration=optional("mwt.calibration", json.loads),
                finetune=optional("mwt.finetune", json.loads),
                parts=tuple(json.loads(props.get("mwt.parts", "[]"))),
                origin=optional("mwt.origin", _origin),
                version=props.get("mwt.version", "?"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise MwtError(f"{label} has damaged mwt metadata ({type(e).__name__}: {str(e)[:120]})") from None
        check_class_names(meta.classes, label)  # they become file lines, table rows and config strings
        return meta

    def write(self, model: onnx.ModelProto) -> None:
        """Replace the model's metadata_props with this metadata."""
        del model.metadata_props[:]
        for key, value in self.to_props().items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value

    @classmethod
    def read(cls, model: onnx.ModelProto, label: str = "the model") -> ModuleMetadata:
        """The metadata of an in-memory model."""
        return cls.from_props({p.key: p.value for p in model.metadata_props}, label)


ORIGINS = ("data-free", "fine-tuned")
# How a module's streams met the alignment (mwt.selection.aligned_kernels): "up" adds the next most
# frequent kernels, "down" drops the weakest kept ones, "nearest" moves whichever is fewer.
ROUNDINGS = ("up", "nearest", "down")


def _rounding(text: str) -> str:
    if text not in ROUNDINGS:
        raise ValueError(f"unknown rounding {text[:40]!r}")
    return text


def _origin(text: str) -> str:
    if text not in ORIGINS:
        raise ValueError(f"unknown origin {text[:40]!r}")
    return text


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"negative count {value}")
    return value


__all__ = ["FORMAT", "INPUT", "LABEL", "LOGITS", "MODULE_OPS", "PROBABILITIES", "GateMode", "InputSpec", "LayerKeep",
           "ModuleMetadata", "Precision"]
