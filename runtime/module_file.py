"""Reading and checking mwt module files (ONNX with mwt metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from mwt.core.errors import MwtError
from mwt.core.metadata import LOGITS, InputSpec, ModuleMetadata


@dataclass
class ModuleFile:
    """An ONNX module with the metadata the exporter (or `compose`) wrote into it."""

    path: Path | None
    model: onnx.ModelProto
    meta: ModuleMetadata

    @property
    def classes(self) -> list[str]:
        return list(self.meta.classes)

    @property
    def input(self) -> InputSpec:
        return self.meta.input

    @property
    def source(self) -> str:
        return self.meta.source_sha256

    @property
    def flops(self) -> int:
        return self.meta.module_flops

    @property
    def name(self) -> str:
        return str(self.path) if self.path else "+".join(self.classes)


def read_module(path: str | Path) -> ModuleFile:
    """Load a module file and check that it is an mwt module; MwtError names what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise MwtError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf raises DecodeError, RuntimeWarning, ... for a non-ONNX file
        raise MwtError(f"{path} is not an ONNX file ({type(e).__name__})") from None
    if not model.graph.node:
        raise MwtError(f"{path} is not an ONNX model (no graph)")
    return module_from_model(model, path)


def module_from_model(model: onnx.ModelProto, path: Path | None = None) -> ModuleFile:
    """Check the mwt metadata and the tensors of an in-memory model."""
    label = str(path) if path else "the model"
    meta = ModuleMetadata.read(model, label)
    inputs = [i.name for i in model.graph.input]
    if meta.input.name not in inputs:
        raise MwtError(f"{label} has no input named '{meta.input.name}'")
    if LOGITS not in [o.name for o in model.graph.output]:
        raise MwtError(f"{label} has no '{LOGITS}' output")
    for init in model.graph.initializer:
        try:
            values = numpy_helper.to_array(init)
        except Exception as e:  # onnx raises ValueError/TypeError/... for data that does not fit its dims
            raise MwtError(f"{label}: weight '{init.name}' is damaged ({type(e).__name__})") from None
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise MwtError(f"{label}: weight '{init.name}' holds NaN or infinite values; the module is damaged")
    return ModuleFile(path, model, meta)
