"""SimCNN and ResCNN, the two small CNNs of the CNNSplitter and MwT evaluations."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mwt.models.gate import GatedConv, Preprocess
from mwt.models.spec import ModelSpec, scaled


class SimCNN(nn.Module):
    """13 convs in the VGG16 layout with a 3-layer classifier; ResCNN adds two residual pairs.

    `residual` lists (from, to) conv indices whose outputs are summed as in ResCNN: the output of
    conv `to` gets the output of conv `from` added before its activation.
    """

    LAYOUT: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]

    def __init__(self, spec: ModelSpec, residual: tuple[tuple[int, int], ...] = ()) -> None:
        super().__init__()
        self.preprocess = Preprocess(spec.mean, spec.std, spec.pad)
        self.residual = dict((to, frm) for frm, to in residual)
        layers: list[nn.Module] = []
        channels = spec.in_channels
        conv_index = 0
        for item in self.LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out = scaled(int(item), spec.width)
            layers.append(GatedConv(channels, out, gated=spec.modular and conv_index > 0))
            channels, conv_index = out, conv_index + 1
        self.features = nn.ModuleList(layers)
        self.classifier = nn.Sequential(
            nn.Linear(channels, scaled(512, spec.width)), nn.ReLU(inplace=True),
            nn.Linear(scaled(512, spec.width), spec.num_classes),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return (logits, gates in layer order)."""
        x = self.preprocess(x)
        gates: list[torch.Tensor] = []
        outputs: dict[int, torch.Tensor] = {}
        conv_index = 0
        for layer in self.features:
            if not isinstance(layer, GatedConv):
                x = layer(x)
                continue
            x, g = layer(x)
            if conv_index in self.residual:
                x = x + outputs[self.residual[conv_index]]
            x = F.relu(x)
            outputs[conv_index] = x
            conv_index += 1
            if g is not None:
                gates.append(g)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x), gates
