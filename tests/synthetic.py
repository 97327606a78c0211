"""Synthetic modularized checkpoints: random weights, realistic shapes, no training.

For tests, fuzzing and compiler benchmarks, where what matters is the network and the shape of
its kernel frequencies, not what it has learned.
"""

from __future__ import annotations

import math

import torch

from mwt.checkpoint import Checkpoint, Modularization
from mwt.models import ModelSpec, build_model, gated_layers
from mwt.registry import DATASETS


def random_checkpoint(
    arch: str = "vgg16", width: float = 0.125, seed: int = 0, *, retain: float | None = None,
    frequency_power: float = 3.0, gate_first: bool = False, dataset: str = "fashion-mnist", stem: str = "default",
    args: tuple[tuple[str, bool | int | float | str], ...] = (),
) -> Checkpoint:
    """A modularized checkpoint with random weights, non-trivial BN statistics and random frequencies.

    Frequencies are U**k per class and kernel: k = `frequency_power`, or, with `retain`, the k that
    makes P(frequency >= 0.9) = retain (about that share of every layer in each class's module).
    `args` are a constructed network's constructor arguments.
    """
    info = DATASETS[dataset]
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    spec = ModelSpec(arch, len(info.classes), info.channels, info.size, width, True, info.mean, info.std, info.pad,
                     gate_first=gate_first, stem=stem, args=args)
    model = build_model(spec)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.uniform_(-0.2, 0.2, generator=gen)
    power = math.log(0.9) / math.log(1 - retain) if retain is not None else frequency_power
    layers = gated_layers(model)
    k = len(info.classes)
    freq = {n: torch.rand(k, b.out_channels, generator=gen) ** power for n, b in layers}
    gate_mean = {n: torch.rand(k, b.out_channels, generator=gen) for n, b in layers}
    mod = Modularization([n for n, _ in layers], freq, gate_mean, torch.full((k,), 100))
    return Checkpoint(spec, model.eval().state_dict(), list(info.classes), info.name, modularization=mod)
