"""The mwt checkpoint: one file, safe to load with `torch.load(path, weights_only=True)`.

Layout (see docs/checkpoint-format.md): a dict of plain types and tensors only, so loading never
runs code from the file.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mwt import __version__
from mwt.atomic import write_atomic
from mwt.errors import MwtError
from mwt.models import ModelSpec, build_model

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "frequency": {k: v.float().contiguous() for k, v in self.frequency.items()},
            "gate_mean": {k: v.float().contiguous() for k, v in self.gate_mean.items()},
            "class_counts": self.class_counts.long(),
            "split": self.split,
            "sample_cohesion": list(self.sample_cohesion),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Modularization:
        return cls(
            list(d["layers"]), dict(d["frequency"]), dict(d["gate_mean"]), d["class_counts"],
            str(d.get("split", "train")), list(d.get("sample_cohesion", [])),
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

    def build(self) -> nn.Module:
        """The network with this checkpoint's weights, in eval mode."""
        model = build_model(self.spec)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as e:
            raise MwtError(f"checkpoint weights do not fit a '{self.spec.arch}' model: {str(e).splitlines()[0]}") from None
        return model.eval()

    def require_modularization(self, path: str | Path = "model.pt") -> Modularization:
        if self.modularization is None:
            if not self.spec.modular:
                raise MwtError(f"{path} is a standard (non-modular) model; train without --standard to get modules")
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
        }


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> None:
    """Write atomically: an existing file at `path` survives any failure."""
    payload = ckpt.to_dict()
    write_atomic(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint; every way it can be wrong raises MwtError with one line."""
    path = Path(path)
    if not path.is_file():
        raise MwtError(f"checkpoint {path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise MwtError(
            f"{path} holds pickled objects that are not plain data; refusing to load it (not an mwt checkpoint)"
        ) from None
    except Exception as e:  # torch raises many types for a damaged or foreign file (even KeyError)
        raise MwtError(f"{path} is not a readable checkpoint (truncated or corrupt?): {str(e).splitlines()[0][:200]}") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise MwtError(f"{path} is not an mwt checkpoint")
    if d.get("format_version") != FORMAT_VERSION:
        raise MwtError(f"{path} has checkpoint format {d.get('format_version')}, this mwt reads {FORMAT_VERSION}")
    try:
        spec = ModelSpec.from_dict(d["model"])
        mod = Modularization.from_dict(d["modularization"]) if d.get("modularization") else None
        return Checkpoint(
            spec=spec, state_dict=d["state_dict"], classes=list(d["classes"]), dataset=str(d["dataset"]),
            training=d.get("training") or {}, modularization=mod, mwt_version=str(d.get("mwt_version", "?")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise MwtError(f"{path} is an mwt checkpoint with a missing or malformed field ({e})") from None


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
