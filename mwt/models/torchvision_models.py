"""Networks named from torchvision's model registry (`torchvision:<name>`), made modular.

The network comes from torchvision's own constructor (`weights=None`: nothing is ever
downloaded) with the dataset's classes; the first conv takes the dataset's channels; `--stem
cifar` makes it 3x3 stride 1 and drops the first max-pool, for 32x32 inputs; a width below 1
narrows every conv, batch norm and hidden linear layer alike. Then `insert_gates` makes it
modular. Only names torchvision's registry lists are built: a checkpoint names a constructor
from that allow-list and plain arguments, never code to import.
"""

from __future__ import annotations

import math

import torch
from torch import fx, nn

from mwt.core.errors import MwtError, first_line
from mwt.models.gate import Preprocess
from mwt.models.insert_gates import GatedGraph, insert_gates, trace
from mwt.models.spec import ModelSpec, scaled
from mwt.registry import STEMS, TORCHVISION_PREFIX


# Constructor arguments some networks need to return one tensor of logits: GoogLeNet and
# Inception v3 otherwise add auxiliary heads whose outputs a training-mode trace returns as a
# tuple (and GoogLeNet warns that its default init is slow). A spec's own `args` override these.
CONSTRUCTOR_DEFAULTS: dict[str, dict[str, bool]] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}


def torchvision_names() -> list[str]:
    """The classification models torchvision's registry lists (the allow-list)."""
    import torchvision.models

    return sorted(torchvision.models.list_models(module=torchvision.models))


def torchvision_builder(name: str):  # noqa: ANN201 (torchvision's builders have no common type)
    """torchvision's constructor for a registry name; anything else is one MwtError."""
    import torchvision.models

    names = torchvision_names()
    if name not in names:
        close = [n for n in names if n.split("_")[0] == name.split("_")[0]][:6]
        hint = f"; similar: {', '.join(close)}" if close else f"; e.g. {', '.join(names[:4])} ..."
        raise MwtError(f"unknown model '{TORCHVISION_PREFIX}{name}': torchvision's registry has no classification "
                       f"model '{name}'{hint}")
    return torchvision.models.get_model_builder(name)


def _convs(gm: fx.GraphModule) -> list[tuple[str, nn.Conv2d]]:
    """Every Conv2d the traced forward calls, in the order it calls them (the first reads the image)."""
    modules = dict(gm.named_modules())
    return [(str(n.target), modules[n.target]) for n in gm.graph.nodes
            if n.op == "call_module" and isinstance(modules.get(n.target), nn.Conv2d)]


def _set(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, module)


def _like(conv: nn.Conv2d, c_in: int, c_out: int, groups: int, **changes: object) -> nn.Conv2d:
    settings = dict(kernel_size=conv.kernel_size, stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                    bias=conv.bias is not None, padding_mode=conv.padding_mode)
    settings.update(changes)
    return nn.Conv2d(c_in, c_out, groups=groups, **settings)  # type: ignore[arg-type]


def _groups(conv: nn.Conv2d, c_in: int, c_out: int) -> int:
    """Groups of a narrowed conv: depthwise stays depthwise; a grouped conv keeps as many of its
    groups as divide both new widths."""
    if conv.groups == 1:
        return 1
    if conv.groups == conv.in_channels == conv.out_channels and c_in == c_out:
        return c_in
    g = math.gcd(c_in, c_out)
    return max(d for d in range(1, min(conv.groups, g) + 1) if g % d == 0)


def adapt(net: nn.Module, spec: ModelSpec, what: str) -> nn.Module:
    """The constructed network with the dataset's input channels, the spec's stem and width."""
    gm = trace(net, what)
    convs = _convs(gm)
    if not convs:
        raise MwtError(f"{what} has no convolution, so there is nothing to gate")
    first_name, first = convs[0]
    width = spec.width
    for name, conv in convs:
        c_in = spec.in_channels if name == first_name else scaled(conv.in_channels, width)
        c_out = scaled(conv.out_channels, width)
        changes: dict[str, object] = {}
        if name == first_name and spec.stem == "cifar":
            changes = dict(kernel_size=3, stride=1, padding=1, dilation=1)
        if width != 1 or (name == first_name and (c_in != conv.in_channels or changes)):
            _set(net, name, _like(conv, c_in, c_out, _groups(conv, c_in, c_out), **changes))
    if width != 1:
        linears = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
        for i, (name, m) in enumerate(linears):
            out = m.out_features if i == len(linears) - 1 else scaled(m.out_features, width)  # the head keeps its classes
            _set(net, name, nn.Linear(scaled(m.in_features, width), out, bias=m.bias is not None))
        for name, m in list(net.named_modules()):
            if isinstance(m, nn.BatchNorm2d):
                _set(net, name, nn.BatchNorm2d(scaled(m.num_features, width), eps=m.eps, momentum=m.momentum))
    if spec.stem == "cifar":
        _drop_first_pool(net, first_name)
    return net


def _drop_first_pool(net: nn.Module, first_conv: str) -> None:
    """Replace the max-pool right after the stem (before the second conv), if there is one."""
    seen_first = False
    for name, m in net.named_modules():
        if name == first_conv:
            seen_first = True
        elif isinstance(m, nn.Conv2d) and seen_first:
            return
        elif isinstance(m, nn.MaxPool2d) and seen_first:
            _set(net, name, nn.Identity())
            return


def build_torchvision(spec: ModelSpec) -> GatedGraph:
    """The modular (or, with `spec.modular` False, standard) network a `torchvision:` spec names."""
    name = spec.arch[len(TORCHVISION_PREFIX):]
    if spec.stem not in STEMS:
        raise MwtError(f"unknown stem '{spec.stem}'; choose one of: {', '.join(STEMS)}")
    builder = torchvision_builder(name)
    what = f"{TORCHVISION_PREFIX}{name}"
    try:
        args = {**CONSTRUCTOR_DEFAULTS.get(name, {}), **dict(spec.args)}
        net = builder(weights=None, num_classes=spec.num_classes, **args)
    except Exception as e:  # a constructor refusing its arguments raises whatever it likes
        raise MwtError(f"torchvision's {name} does not take these arguments: {first_line(e)}") from None
    net = adapt(net, spec, what)
    return insert_gates(net, Preprocess(spec.mean, spec.std, spec.pad), modular=spec.modular,
                        gate_first=spec.gate_first, what=what)


def check_network(model: nn.Module, spec: ModelSpec) -> None:
    """One forward pass at the spec's input size, so a network that cannot take these images (or a
    width its channel arithmetic does not allow) fails with one MwtError before training."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits, _ = model(torch.zeros(2, *spec.input_shape))
    except Exception as e:  # shape errors surface as RuntimeError, ValueError ...
        raise MwtError(f"{spec.arch} at width {spec.width:g} cannot run on {spec.input_size[0]}x{spec.input_size[1]} "
                       f"images: {first_line(e)}") from None
    finally:
        model.train(was)
    if tuple(logits.shape) != (2, spec.num_classes):
        raise MwtError(f"{spec.arch} returns logits of shape {list(logits.shape)[1:]}, not ({spec.num_classes},)")
