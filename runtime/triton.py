"""A Triton Inference Server model repository from mwt modules (no Triton needed to write one).

    REPO/<name>/config.pbtxt     platform onnxruntime_onnx, tensors from the module's metadata
    REPO/<name>/labels.txt       class names, one per line (Triton's classification extension)
    REPO/<name>/1/model.onnx     the module

Each module becomes one model, or, with `merged`, the composition becomes one model with
`logits`, `probabilities` and `label` outputs. The repository is written to a temporary folder
beside the target and moved into place, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mwt.core.errors import MwtError
from runtime.merge import merge_modules
from mwt.core.metadata import LABEL, LOGITS, PROBABILITIES
from runtime.module_file import ModuleFile


@dataclass(frozen=True)
class TritonSettings:
    max_batch_size: int = 32
    instance_kind: str = "cpu"  # "cpu" or "gpu"
    instances: int = 1
    max_queue_delay_us: int = 5000  # dynamic batching: how long a request waits for company


def model_name(module: ModuleFile) -> str:
    """A Triton model name from a module's classes: letters, digits, '-' and '_' only."""
    name = "-".join(module.classes)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)[:100] or "module"


def _tensor(name: str, dims: list[int], data_type: str = "TYPE_FP32", extra: str = "") -> str:
    return f'  {{\n    name: "{name}"\n    data_type: {data_type}\n    dims: [ {", ".join(map(str, dims))} ]{extra}\n  }}'


def config_pbtxt(name: str, module: ModuleFile, settings: TritonSettings, composed: bool) -> str:
    """The model's config.pbtxt (protobuf text format of Triton's ModelConfig)."""
    classes = len(module.classes)
    labels = '\n    label_filename: "labels.txt"'
    outputs = [_tensor(LOGITS, [classes], extra=labels)]
    if composed:
        outputs += [_tensor(PROBABILITIES, [classes], extra=labels),
                    _tensor(LABEL, [1], "TYPE_INT64", "\n    reshape: { shape: [ ] }")]
    kind = "KIND_GPU" if settings.instance_kind == "gpu" else "KIND_CPU"
    meta = {"mwt_classes": json.dumps(module.classes), "mwt_source_sha256": module.source,
            "mwt_precision": module.meta.precision.value}
    parameters = "\n".join(f'parameters {{ key: "{k}" value: {{ string_value: {json.dumps(v)} }} }}'
                           for k, v in meta.items())
    return "\n".join([
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {settings.max_batch_size}",
        "input [",
        _tensor(module.input.name, list(module.input.shape)),
        "]",
        "output [",
        ",\n".join(outputs),
        "]",
        f"dynamic_batching {{ max_queue_delay_microseconds: {settings.max_queue_delay_us} }}",
        f"instance_group [ {{ count: {settings.instances} kind: {kind} }} ]",
        parameters,
        "",
    ])


def write_repository(modules: list[ModuleFile], out: Path, settings: TritonSettings = TritonSettings(), *,
                     merged: bool = False, force: bool = False) -> list[str]:
    """Write the repository at `out` (see the module docstring); returns the model names."""
    if not modules:
        raise MwtError("no modules given")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise MwtError(f"{out} exists and is not an empty folder; replace it only when told to", options=("force",))
    if out.exists() and not out.is_dir():
        raise MwtError(f"{out} exists and is not a folder")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise MwtError(f"cannot write {out}: folder {parent} does not exist")
    if merged:
        from runtime.composed import check_compatible
        from runtime.module_file import module_from_model

        check_compatible(modules)
        models = [module_from_model(merge_modules(modules))]
    else:
        models = list(modules)
    names: list[str] = []
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    except OSError as e:
        raise MwtError(f"cannot write {out}: {e.strerror}") from None
    try:
        for module in models:
            name = model_name(module)
            if name in names:
                raise MwtError(f"two modules would both be the Triton model '{name}'")
            names.append(name)
            folder = staging / name
            (folder / "1").mkdir(parents=True)
            (folder / "1" / "model.onnx").write_bytes(module.model.SerializeToString(deterministic=True))
            (folder / "labels.txt").write_text("\n".join(module.classes) + "\n")
            (folder / "config.pbtxt").write_text(config_pbtxt(name, module, settings, composed=merged))
        os.chmod(staging, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=parent))
            os.replace(out, old / "repo")
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return names
