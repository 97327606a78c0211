"""CIFAR-style ResNet (3x3 stem, no max-pool) with gated convs, downsample convs included."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mwt.models.gate import GatedConv, Preprocess
from mwt.models.spec import ModelSpec, scaled
from mwt.registry import Architecture


class BasicBlock(nn.Module):
    """Two 3x3 gated convs plus a shortcut (a gated 1x1 conv when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, gated: bool) -> None:
        super().__init__()
        self.conv1 = GatedConv(in_channels, out_channels, 3, stride, gated=gated)
        self.conv2 = GatedConv(out_channels, out_channels, 3, 1, gated=gated)
        self.downsample = (
            GatedConv(in_channels, out_channels, 1, stride, gated=gated)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # Gates are appended in registration order (conv1, conv2, downsample) = named_modules order.
        y, g1 = self.conv1(x)
        y, g2 = self.conv2(F.relu(y))
        shortcut, g3 = self.downsample(x) if self.downsample is not None else (x, None)
        return F.relu(y + shortcut), [g for g in (g1, g2, g3) if g is not None]


class ResNet(nn.Module):
    """ResNet for small images; `arch.layout` gives the number of BasicBlocks per stage."""

    def __init__(self, spec: ModelSpec, arch: Architecture) -> None:
        super().__init__()
        self.preprocess = Preprocess(spec.mean, spec.std, spec.pad)
        channels = scaled(64, spec.width)
        self.stem = GatedConv(spec.in_channels, channels, 3, 1, gated=spec.modular and spec.gate_first)
        stages: list[nn.Module] = []
        for stage, count in enumerate(arch.layout):
            out = scaled(64 * 2**stage, spec.width)
            for b in range(int(count)):
                stride = 2 if stage > 0 and b == 0 else 1
                stages.append(BasicBlock(channels, out, stride, spec.modular))
                channels = out
        self.blocks = nn.ModuleList(stages)
        self.fc = nn.Linear(channels, spec.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return (logits (B, classes), gates: one (B, C) tensor per gated conv, in layer order)."""
        x, g = self.stem(self.preprocess(x))
        gates: list[torch.Tensor] = [g] if g is not None else []
        x = F.relu(x)
        for block in self.blocks:
            x, block_gates = block(x)
            gates.extend(block_gates)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x), gates
