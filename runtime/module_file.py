"""Reading and checking mwt module files (ONNX with mwt metadata)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from mwt.errors import MwtError

FORMAT_PREFIX = "mwt-module/"


@dataclass
class ModuleFile:
    """An ONNX module with the metadata the exporter (or `compose`) wrote into it."""

    path: Path | None
    model: onnx.ModelProto
    classes: list[str]
    input: dict[str, Any]  # name, shape [C, H, W], channels, range, dtype, dataset
    metadata: dict[str, str]

    @property
    def source(self) -> str:
        return self.metadata.get("mwt.source_sha256", "")

    @property
    def flops(self) -> int:
        return int(self.metadata.get("mwt.module_flops", "0"))

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
    """Check the mwt metadata of an in-memory model."""
    label = str(path) if path else "the model"
    meta = {p.key: p.value for p in model.metadata_props}
    if not meta.get("mwt.format", "").startswith(FORMAT_PREFIX):
        raise MwtError(f"{label} is an ONNX model but not an mwt module (no mwt metadata); export one with mwt-export")
    try:
        classes = json.loads(meta["mwt.classes"])
        spec = json.loads(meta["mwt.input"])
    except (KeyError, json.JSONDecodeError) as e:
        raise MwtError(f"{label} has damaged mwt metadata ({e})") from None
    outputs = [o.name for o in model.graph.output]
    if "logits" not in outputs:
        raise MwtError(f"{label} has no 'logits' output")
    return ModuleFile(path, model, list(classes), spec, meta)
