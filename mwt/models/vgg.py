"""CIFAR-style VGG with batch norm, built from a configuration list as torchvision's vgg.py does."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mwt.models.gate import GatedConv, Preprocess
from mwt.models.spec import ModelSpec, scaled

CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """VGG-BN: the first conv is plain, every other conv is gated when `spec.modular`."""

    def __init__(self, spec: ModelSpec, config: list[int | str]) -> None:
        super().__init__()
        self.preprocess = Preprocess(spec.mean, spec.std, spec.pad)
        layers: list[nn.Module] = []
        channels = spec.in_channels
        for i, item in enumerate(config):
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out = scaled(int(item), spec.width)
            layers.append(GatedConv(channels, out, gated=spec.modular and i > 0))
            channels = out
        self.features = nn.ModuleList(layers)
        hidden = scaled(512, spec.width)
        self.classifier = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, spec.num_classes),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return (logits (B, classes), gates: one (B, C) tensor per gated conv, in layer order)."""
        x = self.preprocess(x)
        gates: list[torch.Tensor] = []
        for layer in self.features:
            if isinstance(layer, GatedConv):
                x, g = layer(x)
                x = F.relu(x)
                if g is not None:
                    gates.append(g)
            else:
                x = layer(x)
        # Global pooling makes the classifier independent of the input size (1x1 already at 32x32).
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x), gates
