"""Building networks from registry entries (`mwt.registry.MODELS`): one constructor per family."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from mwt.core.errors import MwtError
from mwt.models.gate import GatedConv, MaskGenerator, PassThroughConv, Preprocess
from mwt.models.resnet import ResNet
from mwt.models.spec import ModelSpec
from mwt.models.vgg import VGG
from mwt.registry import MODELS, Architecture, architecture, check_width, is_torchvision, is_user_code

FAMILIES: dict[str, Callable[[ModelSpec, Architecture], nn.Module]] = {"vgg": VGG, "resnet": ResNet}


def build_model(spec: ModelSpec) -> nn.Module:
    """Construct the network a spec describes (random weights), compact widths included."""
    check_width(spec.width)
    if is_torchvision(spec.arch):
        from mwt.models.torchvision_models import build_torchvision  # imports torchvision: only when asked

        model: nn.Module = build_torchvision(spec)
    elif is_user_code(spec.arch):
        from mwt.models.user_code import build_user

        model = build_user(spec)
    else:
        arch = architecture(spec.arch)
        model = FAMILIES[arch.family](spec, arch)
    if spec.widths:
        resize_layers(model, spec.widths)
    return model


def gated_layers(model: nn.Module) -> list[tuple[str, GatedConv]]:
    """(name, block) of every gated conv, in the order the model's forward returns their gates."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, GatedConv) and m.gate is not None]


def resize_layers(model: nn.Module, widths: tuple[tuple[str, int, int], ...]) -> None:
    """Give the named conv blocks and linear layers new (in, out) widths, with fresh weights.

    This is how a compact network (a module with unretained kernels removed) is rebuilt from its
    architecture: the same definition, narrower layers. Gated blocks lose their mask generator.
    """
    for name, c_in, c_out in widths:
        try:
            layer = model.get_submodule(name)
        except AttributeError:
            raise MwtError(f"the model has no layer named '{name}'") from None
        if isinstance(layer, GatedConv):
            old = layer.conv
            layer.conv = nn.Conv2d(c_in, c_out, old.kernel_size, stride=old.stride, padding=old.padding, bias=False)
            layer.bn = nn.BatchNorm2d(c_out)
            layer.gate = None
        elif isinstance(layer, nn.Linear):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, nn.Linear(c_in, c_out))
        else:
            raise MwtError(f"layer '{name}' is a {type(layer).__name__}; only conv blocks and linear layers resize")


__all__ = [
    "MODELS", "GatedConv", "MaskGenerator", "ModelSpec", "PassThroughConv", "Preprocess", "build_model", "gated_layers", "resize_layers",
]
