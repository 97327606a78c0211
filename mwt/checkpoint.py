"""The mwt checkpoint: one file, safe to load with `torch.load(path, weights_only=True)`.

Layout (see docs/checkpoint-format.md): a dict of plain types and tensors only, so loading never
runs code from the file.
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mwt import __version__
from mwt.core.atomic import write_bytes_atomic
from mwt.data.builtin import dataset_info
from mwt.data.source import DataSource
from mwt.core.errors import MwtError, first_line
from mwt.core.names import check_class_names
from mwt.models import ModelSpec, build_model, gated_layers
from mwt.registry import DatasetInfo, check_input_size

FORMAT = "mwt-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Modularization:
    """Per-class kernel statistics gathered over a dataset split by `mwt modularize`.

    `frequency[layer]` is (num_classes, C): the fraction of each class's samples whose gate > 0;
    `gate_mean[layer]` is (num_classes, C): each class's mean gate value.
    """

    layers: list[str]
    frequency: dict[str, torch.Tensor]
    gate_mean: dict[str, torch.Tensor]
    class_counts: torch.Tensor
    split: str = "train"
    sample_cohesion: list[float] = field(default_factory=list)  # per class: mean Jaccard of sample kernel sets
    gate_sq_mean: dict[str, torch.Tensor] | None = None  # per class: mean squared gate (how much gates spread)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "frequency": {k: v.float().contiguous() for k, v in self.frequency.items()},
            "gate_mean": {k: v.float().contiguous() for k, v in self.gate_mean.items()},
            "class_counts": self.class_counts.long(),
            "split": self.split,
            "sample_cohesion": list(self.sample_cohesion),
            "gate_sq_mean": None if self.gate_sq_mean is None else {
                k: v.float().contiguous() for k, v in self.gate_sq_mean.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Modularization:
        sq = d.get("gate_sq_mean")
        return cls(
            list(d["layers"]), dict(d["frequency"]), dict(d["gate_mean"]), d["class_counts"],
            str(d.get("split", "train")), list(d.get("sample_cohesion", [])), dict(sq) if sq is not None else None,
        )


@dataclass
class Checkpoint:
    """A trained model with everything needed to use it without the training code's state."""

    spec: ModelSpec
    state_dict: dict[str, torch.Tensor]
    classes: list[str]
    dataset: str
    training: dict[str, Any] = field(default_factory=dict)  # settings, results, per-epoch history
    modularization: Modularization | None = None
    mwt_version: str = __version__
    resume: dict[str, Any] | None = None  # a resumable run's state (mwt.run_state.RunState), None once finished
    data: dict[str, Any] | None = None  # the DataSource (an image folder's path and preprocessing)

    def dataset_info(self) -> DatasetInfo:
        """What the model was trained on: a built-in dataset's entry, or an image folder's figures."""
        if not self.source.is_folder:
            return dataset_info(self.dataset)
        spec = self.spec
        return DatasetInfo(self.dataset, tuple(self.classes), spec.in_channels, spec.input_size, spec.mean, spec.std,
                           spec.pad, augment="crop-flip")

    @property
    def source(self) -> DataSource:
        """Where the training images came from and how they were preprocessed."""
        return DataSource.from_dict(self.data) if self.data else DataSource(self.dataset)

    def build(self) -> nn.Module:
        """The network with this checkpoint's weights, in eval mode."""
        model = build_model(self.spec)
        model.load_state_dict(self.state_dict)  # shapes were checked when the checkpoint was loaded
        return model.eval()

    def require_modularization(self, path: str | Path = "model.pt") -> Modularization:
        if self.modularization is None:
            if not self.spec.modular:
                raise MwtError(f"{path} is a standard (non-modular) model; modules come from a modular one")
            raise MwtError(f"{path} was never modularized; run 'mwt modularize {path}' first")
        return self.modularization

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "mwt_version": self.mwt_version,
            "model": self.spec.to_dict(),
            "state_dict": {k: v.detach().cpu().contiguous() for k, v in self.state_dict.items()},
            "classes": list(self.classes),
            "dataset": self.dataset,
            "input": {
                "shape": [self.spec.in_channels, *self.spec.input_size],
                "range": [0.0, 1.0],
                "mean": list(self.spec.mean),
                "std": list(self.spec.std),
                "pad": self.spec.pad,
            },
            "training": self.training,
            "modularization": self.modularization.to_dict() if self.modularization else None,
            "resume": self.resume,
            "data": self.data,
        }


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> None:
    """Write atomically: an existing file at `path` survives any failure."""
    buffer = io.BytesIO()  # serialized in memory: a full disk then fails as an OSError, in one line
    torch.save(ckpt.to_dict(), buffer)
    write_bytes_atomic(path, buffer.getbuffer())


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint; every way it can be wrong raises MwtError with one line.

    A checkpoint is untrusted input: it is read with `weights_only=True` (no code runs), and its
    whole structure is checked against the network its spec describes before anything uses it.
    """
    path = Path(path)
    if not path.is_file():
        raise MwtError(f"checkpoint {path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols of damaged files; we say it once
            warnings.simplefilter("ignore", UserWarning)
            d = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise MwtError(
            f"{path} holds pickled objects that are not plain data; refusing to load it (not an mwt checkpoint)"
        ) from None
    except MemoryError:
        raise MwtError(f"{path} asks for more memory than this machine has; it is not a usable checkpoint") from None
    except Exception as e:  # torch raises many types for a damaged or foreign file (even KeyError)
        raise MwtError(f"{path} is not a readable checkpoint (truncated or corrupt?): {first_line(e)}") from None
    return checkpoint_from_dict(d, str(path))


def checkpoint_from_dict(d: object, label: str = "the checkpoint") -> Checkpoint:
    """Check a loaded checkpoint dict field by field and turn it into a Checkpoint."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise MwtError(f"{label} is not an mwt checkpoint")
    if d.get("format_version") != FORMAT_VERSION:
        raise MwtError(f"{label} has checkpoint format {d.get('format_version')!r}, this mwt reads {FORMAT_VERSION}")
    try:
        spec = ModelSpec.from_dict(d["model"])
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise MwtError(f"{label}: the model description is missing or malformed ({type(e).__name__}: {e})") from None
    _check_spec(spec, label)
    model = build_model(spec)
    state_dict = _checked_weights(d.get("state_dict"), model, spec, label)
    classes = d.get("classes")
    if (not isinstance(classes, list) or len(classes) != spec.num_classes
            or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes)):
        raise MwtError(f"{label}: 'classes' must list {spec.num_classes} distinct class names")
    check_class_names(classes, label)
    if not isinstance(d.get("dataset"), str):
        raise MwtError(f"{label}: 'dataset' must be a name")
    training = d.get("training") or {}
    if not isinstance(training, dict):
        raise MwtError(f"{label}: 'training' must be a dict")
    mod = None
    if d.get("modularization") is not None:
        mod = _checked_modularization(d["modularization"], model, spec.num_classes, label)
    resume = d.get("resume")
    if resume is not None and not isinstance(resume, dict):
        raise MwtError(f"{label}: 'resume' must be a dict")
    data = d.get("data")
    if data is not None:
        try:
            DataSource.from_dict(data)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise MwtError(f"{label}: the data source is malformed ({type(e).__name__}: {e})") from None
    return Checkpoint(spec=spec, state_dict=state_dict, classes=list(classes), dataset=d["dataset"],
                      training=training, modularization=mod, mwt_version=str(d.get("mwt_version", "?")),
                      resume=resume, data=data)


def _check_spec(spec: ModelSpec, label: str) -> None:
    problems = []
    if not 1 <= spec.num_classes <= 100_000:
        problems.append(f"num_classes {spec.num_classes}")
    if not 1 <= spec.in_channels <= 64:
        problems.append(f"in_channels {spec.in_channels}")
    if not all(1 <= s <= 16_384 for s in spec.input_size):
        problems.append(f"input_size {list(spec.input_size)}")
    if not 0 <= spec.pad <= 1024:
        problems.append(f"pad {spec.pad}")
    if len(spec.mean) != spec.in_channels or len(spec.std) != spec.in_channels:
        problems.append("mean/std do not have one value per input channel")
    if not all(math.isfinite(v) for v in spec.mean) or not all(math.isfinite(v) and v > 0 for v in spec.std):
        problems.append("mean/std are not finite positive numbers")
    if problems:
        raise MwtError(f"{label}: the model description is not valid ({'; '.join(problems)})")
    try:
        check_input_size(spec.arch, spec.input_size, spec.pad)  # else the first forward pass fails in torch
    except MwtError as e:
        raise MwtError(f"{label}: {e}") from None


def _shape(t: torch.Tensor) -> list[int]:
    return list(t.shape)


def _checked_weights(state_dict: object, model: nn.Module, spec: ModelSpec, label: str) -> dict[str, torch.Tensor]:
    """The weights, if they are exactly the tensors the spec's network has, with finite values."""
    if not isinstance(state_dict, dict):
        raise MwtError(f"{label}: 'state_dict' is missing")
    expected = model.state_dict()
    what = f"a {spec.arch} of width {spec.width:g}"
    for name, ref in expected.items():
        t = state_dict.get(name)
        if t is None:
            raise MwtError(f"{label}: tensor '{name}' is missing ({what} has it)")
        if not isinstance(t, torch.Tensor):
            raise MwtError(f"{label}: '{name}' is a {type(t).__name__}, not a tensor")
        if t.shape != ref.shape:
            raise MwtError(f"{label}: tensor '{name}' has shape {_shape(t)} where {what} needs {_shape(ref)}")
        if t.dtype.is_floating_point != ref.dtype.is_floating_point:
            raise MwtError(f"{label}: tensor '{name}' has dtype {t.dtype} where {what} needs {ref.dtype}")
        if t.dtype.is_floating_point and not bool(torch.isfinite(t).all()):
            raise MwtError(f"{label}: tensor '{name}' holds NaN or infinite values; the weights are unusable")
    extra = sorted(set(state_dict) - set(expected))
    if extra:
        raise MwtError(f"{label}: tensor '{extra[0]}' does not belong to {what}")
    return {k: state_dict[k] for k in expected}


def _checked_modularization(d: object, model: nn.Module, num_classes: int, label: str) -> Modularization:
    try:
        mod = Modularization.from_dict(d)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise MwtError(f"{label}: the modularization is malformed ({type(e).__name__}: {e})") from None
    layers = [(n, b.out_channels) for n, b in gated_layers(model)]
    if mod.layers != [n for n, _ in layers]:
        raise MwtError(f"{label}: the modularization lists layers {mod.layers[:3]}... but the model's gated layers "
                       f"are {[n for n, _ in layers][:3]}...")
    statistics = ("frequency", "gate_mean") + (("gate_sq_mean",) if mod.gate_sq_mean is not None else ())
    for name, channels in layers:
        for statistic in statistics:
            t = getattr(mod, statistic).get(name)
            if not isinstance(t, torch.Tensor) or t.shape != (num_classes, channels):
                raise MwtError(f"{label}: modularization {statistic} of layer '{name}' must be a "
                               f"({num_classes}, {channels}) tensor")
            if not t.dtype.is_floating_point or not bool(((t >= 0) & (t <= 1)).all()):
                raise MwtError(f"{label}: modularization {statistic} of layer '{name}' must hold values in [0, 1]")
    counts = mod.class_counts
    if (not isinstance(counts, torch.Tensor) or counts.shape != (num_classes,) or counts.dtype.is_floating_point
            or bool((counts < 0).any())):
        raise MwtError(f"{label}: modularization class_counts must be {num_classes} non-negative counts")
    return mod


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
