"""Model registry: one place maps architecture names to constructors; the CLI's choices come from it."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from mwt.errors import MwtError
from mwt.models.gate import GatedConv, MaskGenerator, Preprocess
from mwt.models.resnet import ResNet
from mwt.models.simcnn import SimCNN
from mwt.models.spec import ModelSpec
from mwt.models.vgg import CONFIGS, VGG

MODELS: dict[str, Callable[[ModelSpec], nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[[ModelSpec], nn.Module]], Callable[[ModelSpec], nn.Module]]:
    """Decorator: make `fn(spec) -> nn.Module` buildable by name."""

    def wrap(fn: Callable[[ModelSpec], nn.Module]) -> Callable[[ModelSpec], nn.Module]:
        MODELS[name] = fn
        return fn

    return wrap


@register_model("vgg16")
def vgg16(spec: ModelSpec) -> nn.Module:
    return VGG(spec, CONFIGS["vgg16"])


@register_model("vgg11")
def vgg11(spec: ModelSpec) -> nn.Module:
    return VGG(spec, CONFIGS["vgg11"])


@register_model("resnet18")
def resnet18(spec: ModelSpec) -> nn.Module:
    return ResNet(spec, [2, 2, 2, 2])


@register_model("simcnn")
def simcnn(spec: ModelSpec) -> nn.Module:
    return SimCNN(spec)


@register_model("rescnn")
def rescnn(spec: ModelSpec) -> nn.Module:
    # ResCNN: SimCNN with residual sums around the 3rd-4th and 11th-13th convs (same shapes).
    return SimCNN(spec, residual=((2, 3), (10, 12)))


def build_model(spec: ModelSpec) -> nn.Module:
    """Construct the network a spec describes (random weights)."""
    if spec.arch not in MODELS:
        raise MwtError(f"unknown model '{spec.arch}'; choose one of: {', '.join(sorted(MODELS))}")
    if not 0 < spec.width <= 4:
        raise MwtError(f"width must be in (0, 4], got {spec.width}")
    return MODELS[spec.arch](spec)


def gated_layers(model: nn.Module) -> list[tuple[str, GatedConv]]:
    """(name, block) of every gated conv, in the order the model's forward returns their gates."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, GatedConv) and m.gate is not None]


__all__ = [
    "MODELS", "GatedConv", "MaskGenerator", "ModelSpec", "Preprocess", "build_model", "gated_layers", "register_model",
]
