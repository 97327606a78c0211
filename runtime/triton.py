"""A Triton Inference Server model repository from mwt modules (no Triton needed to write one).

    REPO/<name>/config.pbtxt     platform onnxruntime_onnx, tensors from the module's metadata
    REPO/<name>/labels.txt       class names, one per line (Triton's classification extension)
    REPO/<name>/1/model.onnx     the module

Each module becomes one model, or, with `merged`, the composition becomes one model with
`logits`, `probabilities` and `label` outputs. The repository is written to a temporary folder
beside the target and moved into place, so a failure leaves nothing half-written; the working
folder, a folder above it and a mount point are never replaced.

Every string in config.pbtxt (the input's name, the class list, ...) is written with protobuf's
own text-format escaping (`google.protobuf.text_encoding.CEscape`), so no name can close its
string and add fields. Why not build the config through tritonclient's `model_config_pb2`: its
package is importable only with grpc installed (tritonclient[grpc]: grpcio and its own protobuf
pin), a large install for a runtime whose base needs none; protobuf itself already comes with
onnx. The tests parse every config with Triton's schema from tritonclient.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.text_encoding import CEscape

from mwt.core.errors import MwtError
from mwt.core.names import safe_stem
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
    return safe_stem(module.classes)


def quoted(text: str) -> str:
    """`text` as a protobuf text-format string literal, escaped by protobuf itself."""
    return '"' + CEscape(text, as_utf8=True) + '"'


def _tensor(name: str, dims: list[int], data_type: str = "TYPE_FP32", extra: str = "") -> str:
    return f'  {{\n    name: {quoted(name)}\n    data_type: {data_type}\n    dims: [ {", ".join(map(str, dims))} ]{extra}\n  }}'


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
    parameters = "\n".join(f'parameters {{ key: {quoted(k)} value: {{ string_value: {quoted(v)} }} }}'
                           for k, v in meta.items())
    return "\n".join([
        f"name: {quoted(name)}",
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


def _check_replaceable(out: Path) -> None:
    """Refuse an output folder that cannot be swapped for a new one: the working folder or one
    above it (a rename cannot move them, and replacing them would take the caller's files), or a
    mount point (a rename cannot cross into or out of it)."""
    real = Path(os.path.realpath(out))
    cwd = Path(os.path.realpath(Path.cwd()))
    if real == cwd or real in cwd.parents:
        raise MwtError(f"{out} is the working folder or one above it; write the repository to a new folder "
                       "(e.g. -o models)")
    if out.is_dir() and os.path.ismount(real):
        raise MwtError(f"{out} is a mount point, which cannot be replaced; write the repository to a folder inside it")


def write_repository(modules: list[ModuleFile], out: Path, settings: TritonSettings = TritonSettings(), *,
                     merged: bool = False, force: bool = False) -> list[str]:
    """Write the repository at `out` (see the module docstring); returns the model names."""
    if not modules:
        raise MwtError("no modules given")
    _check_replaceable(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise MwtError(f"{out} exists and is not an empty folder; replace it only when told to", options=("force",))
    if out.exists() and not out.is_dir():
        raise MwtError(f"{out} exists and is not a folder")
    out = Path(os.path.realpath(out)) if out.is_symlink() else out
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
        _swap(staging, out, parent)
    except OSError as e:  # a full disk, a quota, a folder that cannot be renamed
        shutil.rmtree(staging, ignore_errors=True)
        raise MwtError(f"cannot write {out}: {e.strerror or e}; nothing was changed") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return names


def _swap(staging: Path, out: Path, parent: Path) -> None:
    """Move `staging` to `out`; an existing `out` is moved aside first and back if that fails."""
    if not out.exists():
        os.replace(staging, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=parent))
    try:
        os.replace(out, old / "repo")
    except OSError:
        old.rmdir()
        raise
    try:
        os.replace(staging, out)
    except OSError:
        os.replace(old / "repo", out)
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)
