"""Shared fixtures: tiny real models and checkpoints (random weights, random kernel frequencies)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from exporter.compile import ModuleCompiler

from mwt.checkpoint import Checkpoint, Modularization, save_checkpoint
from mwt.models import ModelSpec, build_model, gated_layers
from mwt.registry import DATASETS

FASHION = DATASETS["fashion-mnist"]


def tiny_spec(arch: str = "vgg16", width: float = 0.125, modular: bool = True, gate_first: bool = False) -> ModelSpec:
    return ModelSpec(arch, 10, 1, (28, 28), width, modular, FASHION.mean, FASHION.std, FASHION.pad, gate_first=gate_first)


def random_checkpoint(arch: str = "vgg16", width: float = 0.125, seed: int = 0, frequency_power: float = 3.0,
                      gate_first: bool = False) -> Checkpoint:
    """A modularized checkpoint with random weights, non-trivial BN statistics and random frequencies."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    spec = tiny_spec(arch, width, gate_first=gate_first)
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


@pytest.fixture(scope="session")
def shared_checkpoint_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A modularized random VGG16 checkpoint on disk, shared by tests that only read it."""
    path = tmp_path_factory.mktemp("shared") / "model.pt"
    save_checkpoint(random_checkpoint("vgg16"), path)
    return path


@pytest.fixture
def checkpoint_file(tmp_path: Path, shared_checkpoint_file: Path) -> Path:
    """A private copy of the shared checkpoint (tests may change or damage it)."""
    path = tmp_path / "model.pt"
    path.write_bytes(shared_checkpoint_file.read_bytes())
    return path


_COMPILERS: dict[tuple[str, int], ModuleCompiler] = {}


def compiler_for(arch: str, seed: int = 1) -> ModuleCompiler:
    """One compiler (one torch export) per random checkpoint, shared across tests."""
    key = (arch, seed)
    if key not in _COMPILERS:
        _COMPILERS[key] = ModuleCompiler(random_checkpoint(arch, width=0.125, seed=seed), source_sha256=f"{arch}-{seed}")
    return _COMPILERS[key]


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
