"""Shared fixtures: tiny real models and checkpoints (random weights, random kernel frequencies)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mwt.checkpoint import Checkpoint, Modularization, save_checkpoint
from mwt.data import DATASETS
from mwt.models import ModelSpec, build_model, gated_layers

FASHION = DATASETS["fashion-mnist"]


def tiny_spec(arch: str = "vgg16", width: float = 0.125, modular: bool = True) -> ModelSpec:
    return ModelSpec(arch, 10, 1, (28, 28), width, modular, FASHION.mean, FASHION.std, FASHION.pad)


def random_checkpoint(arch: str = "vgg16", width: float = 0.125, seed: int = 0, frequency_power: float = 3.0) -> Checkpoint:
    """A modularized checkpoint with random weights, non-trivial BN statistics and random frequencies."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    spec = tiny_spec(arch, width)
    model = build_model(spec)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.uniform_(-0.2, 0.2, generator=gen)
    layers = gated_layers(model)
    freq = {n: torch.rand(10, b.out_channels, generator=gen) ** frequency_power for n, b in layers}
    gate_mean = {n: torch.rand(10, b.out_channels, generator=gen) for n, b in layers}
    mod = Modularization([n for n, _ in layers], freq, gate_mean, torch.full((10,), 100))
    return Checkpoint(spec, model.eval().state_dict(), list(FASHION.classes), "fashion-mnist", modularization=mod)


@pytest.fixture
def checkpoint_file(tmp_path: Path) -> Path:
    """A modularized random VGG16 checkpoint on disk."""
    path = tmp_path / "model.pt"
    save_checkpoint(random_checkpoint("vgg16"), path)
    return path


def fashion_mnist_available() -> bool:
    from mwt.data import load_split

    try:
        load_split("fashion-mnist", "test")
    except Exception:
        return False
    return True


needs_fashion_mnist = pytest.mark.skipif(
    not fashion_mnist_available(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
)
