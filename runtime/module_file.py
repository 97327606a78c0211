"""Reading and checking mwt module files (ONNX with mwt metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from mwt.core.errors import MwtError
from mwt.core.metadata import LOGITS, MODULE_OPS, InputSpec, ModuleMetadata


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
    check_ops(model, label)
    inputs = [i.name for i in model.graph.input]
    if meta.input.name not in inputs:
        raise MwtError(f"{label} has no input named '{meta.input.name}'")
    if LOGITS not in [o.name for o in model.graph.output]:
        raise MwtError(f"{label} has no '{LOGITS}' output")
    _check_logits(model, meta, label)
    for init in model.graph.initializer:
        try:
            values = numpy_helper.to_array(init)
        except Exception as e:  # onnx raises ValueError/TypeError/... for data that does not fit its dims
            raise MwtError(f"{label}: weight '{init.name}' is damaged ({type(e).__name__})") from None
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise MwtError(f"{label}: weight '{init.name}' holds NaN or infinite values; the module is damaged")
    return ModuleFile(path, model, meta)


def check_ops(model: onnx.ModelProto, label: str = "the model") -> None:
    """Refuse a graph outside the op set mwt's compiler emits (`MODULE_OPS`): checked before any
    session sees it, because a `Loop` of 2**62 trips runs in onnxruntime's C++ code, where no
    signal reaches it."""
    if model.functions:
        raise MwtError(f"{label} defines its own functions ({model.functions[0].name}); mwt's compiler never writes "
                       "them, so this is not a module it made")
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise MwtError(f"{label} uses the op {node.op_type} of domain '{node.domain}', which mwt's compiler never "
                           "emits; refusing to run it")
        if node.op_type not in MODULE_OPS:
            raise MwtError(f"{label} uses the op {node.op_type}, which mwt's compiler never emits (control flow and "
                           "other ops are refused before they run)")
        for attribute in node.attribute:
            if attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise MwtError(f"{label}: op {node.op_type} carries a subgraph, which mwt's compiler never emits")


def _check_logits(model: onnx.ModelProto, meta: ModuleMetadata, label: str) -> None:
    """The logits output, where the graph declares its width, has one column per class."""
    logits = next(o for o in model.graph.output if o.name == LOGITS)
    dims = logits.type.tensor_type.shape.dim
    width = dims[1].dim_value if len(dims) == 2 and dims[1].HasField("dim_value") else None
    if len(dims) not in (0, 2) or (width is not None and width != len(meta.classes)):
        raise MwtError(logits_mismatch(label, width if width is not None else "?", len(meta.classes)))


def logits_mismatch(label: str, columns: int | str, classes: int) -> str:
    """The one message for logits that do not have one column per class."""
    return (f"{label} computes {columns} logits per image but its metadata lists {classes} classes; "
            "the module is damaged (export it again)")
