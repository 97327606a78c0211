"""CIFAR-style VGG with batch norm, built from a layout list as torchvision's vgg.py does.

One class serves VGG16, VGG11, SimCNN and ResCNN (see `mwt.registry`), modular or standard.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mwt.models.gate import GatedConv, Preprocess
from mwt.models.spec import ModelSpec, scaled
from mwt.registry import Architecture


class VGG(nn.Module):
    """VGG-BN: every conv but the first is gated when `spec.modular` (the first too with `spec.gate_first`)."""

    def __init__(self, spec: ModelSpec, arch: Architecture) -> None:
        super().__init__()
        self.preprocess = Preprocess(spec.mean, spec.std, spec.pad)
        # conv index `to` gets the output of conv index `from` added before its activation
        self.residual = {to: frm for frm, to in arch.residual}
        layers: list[nn.Module] = []
        channels = spec.in_channels
        conv_index = 0
        for item in arch.layout:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out = scaled(int(item), spec.width)
            gated = spec.modular and (conv_index > 0 or spec.gate_first)
            layers.append(GatedConv(channels, out, gated=gated))
            channels, conv_index = out, conv_index + 1
        self.features = nn.ModuleList(layers)
        hidden = scaled(512, spec.width)
        head: list[nn.Module] = []
        for _ in range(arch.classifier - 1):
            head += [nn.Linear(channels, hidden), nn.ReLU(inplace=True)]
            channels = hidden
        head.append(nn.Linear(channels, spec.num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return (logits (B, classes), gates: one (B, C) tensor per gated conv, in layer order)."""
        x = self.preprocess(x)
        gates: list[torch.Tensor] = []
        outputs: dict[int, torch.Tensor] = {}
        conv_index = 0
        for layer in self.features:
            if not isinstance(layer, GatedConv):
                x = layer(x)
                continue
            if conv_index not in self.residual and layer.gate is not None and layer.gate.leak and self.training:
                x, g = layer.rectified(x)  # the same values; a closed gate learns what opening it would do
            else:
                x, g = layer(x)
                if conv_index in self.residual:
                    x = x + outputs[self.residual[conv_index]]
                x = F.relu(x)
            if self.residual:
                outputs[conv_index] = x
            conv_index += 1
            if g is not None:
                gates.append(g)
        # Global pooling makes the classifier independent of the input size (1x1 already at 32x32).
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x), gates
