"""Gates inserted into any CNN: a torch.fx rewrite that makes a plain network modular.

Every conv whose output goes only into a batch norm becomes one block (`GatedConv.wrap`, the
conv and BN modules kept as they are, so their weights and names stay): a gated block with a
mask generator of its own, or, for a depthwise or channel-preserving grouped conv fed by a gated
block, a `PassThroughConv` that multiplies by its feeder's gates (the gates of concatenated
blocks, concatenated alike, behind a channel concatenation). The first conv stays plain
unless `gate_first`; linear layers (classifier heads) and convs without a BN are left alone.
The rewritten forward returns (logits, gates) with gates in `gated_layers` order, as the
hand-written models do, so training, modularization, the cost model and the exporter need
nothing new. What it cannot handle it refuses with one MwtError, before any training.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
from torch import fx, nn

from mwt.core.errors import MwtError, first_line
from mwt.models.gate import GatedConv, PassThroughConv

# Modules and functions that act on each channel alone: a depthwise conv behind them still reads
# its feeder's channels one to one, so the feeder's gates can pass through.
_CHANNELWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Hardswish, nn.SiLU, nn.LeakyReLU, nn.GELU, nn.Identity,
                        nn.Dropout, nn.Mish, nn.ELU, nn.Sigmoid, nn.Hardsigmoid)
_CHANNELWISE_FUNCTIONS = {torch.relu, torch.nn.functional.relu, torch.nn.functional.relu6,
                          torch.nn.functional.hardswish, torch.nn.functional.silu, torch.nn.functional.gelu,
                          torch.nn.functional.hardtanh, torch.nn.functional.dropout}
_CHANNELWISE_METHODS = {"relu", "relu_", "clamp", "clamp_"}
_CONCATS = {torch.cat, torch.concat, torch.concatenate}


@dataclass(frozen=True)
class GatingPlan:
    """What `insert_gates` did: the gated blocks, pass-through blocks and plain blocks, by name."""

    gated: tuple[str, ...]
    passthrough: tuple[str, ...]
    plain: tuple[str, ...]
    # (module path in the given network, its path here): each conv and BN moved into its block
    renames: tuple[tuple[str, str], ...] = ()

    def translate(self, key: str) -> str:
        """A state-dict key of the given network, as this modular network (under `net.`) names it."""
        module, _, tensor = key.rpartition(".")
        moved = dict(self.renames).get(module)
        return f"net.{moved}.{tensor}" if moved is not None else f"net.{key}"


class GatedGraph(nn.Module):
    """The traced network plus the input preprocessing the hand-written models also carry.

    `forward` returns (logits, gates) like `VGG` and `ResNet`; the traced body sits under `net`.
    """

    def __init__(self, preprocess: nn.Module, net: fx.GraphModule, plan: GatingPlan) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.net = net
        self.plan = plan

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return (logits (B, classes), gates: one (B, C) tensor per gated conv, in layer order)."""
        return self.net(self.preprocess(x))


class _Tracer(fx.Tracer):
    """torch.fx's tracer, keeping every module without submodules as one call (as it keeps
    torch.nn's): tracing through a module that reads `self.training` in its forward bakes the mode
    it had while traced into the graph. torchvision's StochasticDepth (EfficientNet) then ran its
    training branch at inference: random drops, exported to ONNX as RandomUniformLike."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return super().is_leaf_module(m, module_qualified_name) or next(m.children(), None) is None


def trace(net: nn.Module, what: str) -> fx.GraphModule:
    """`net` traced by torch.fx, or one MwtError saying why it cannot be."""
    try:
        return fx.GraphModule(net, _Tracer().trace(net), net.__class__.__name__)
    except Exception as e:  # fx raises many types (TraceError, TypeError, NotImplementedError ...)
        raise MwtError(f"{what} cannot be traced by torch.fx, so gates cannot be inserted: {first_line(e)}") from None


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, attr, module)


def _conv_bn_pairs(gm: fx.GraphModule) -> list[tuple[fx.Node, fx.Node]]:
    """(conv node, BN node) for every Conv2d whose only user is a BatchNorm2d of its width, in graph order."""
    modules = dict(gm.named_modules())
    pairs = []
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.Conv2d):
            continue
        users = list(node.users)
        if len(users) != 1 or users[0].op != "call_module" or len(users[0].args) != 1:
            continue
        bn = modules.get(users[0].target)
        if isinstance(bn, nn.BatchNorm2d) and bn.num_features == modules[node.target].out_channels:
            pairs.append((node, users[0]))
    return pairs


def _is_channelwise(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(node.target), _CHANNELWISE_MODULES)
    if node.op == "call_function":
        return node.target in _CHANNELWISE_FUNCTIONS
    return node.op == "call_method" and node.target in _CHANNELWISE_METHODS


def _feeding_gate(node: fx.Node, outputs: dict[fx.Node, fx.Node | None], modules: dict[str, nn.Module],
                  graph: fx.Graph) -> fx.Node | None:
    """The gates of the gated blocks whose outputs reach `node` through channel-wise ops only, or
    None. Where they reach it through a channel concatenation, their gates are concatenated the same
    way (a new node of `graph`); a concatenation of anything else (a plain block's output, a
    residual sum) has no gates to pass through."""
    seen = 0
    while node not in outputs and _is_channelwise(node, modules) and seen < 64:
        node = node.args[0]  # type: ignore[assignment]
        if not isinstance(node, fx.Node):
            return None
        seen += 1
    if node not in outputs and node.op == "call_function" and node.target in _CONCATS:
        outputs[node] = _concatenated_gates(node, outputs, modules, graph)  # once per concatenation
    return outputs.get(node)


def _concatenated_gates(node: fx.Node, outputs: dict[fx.Node, fx.Node | None], modules: dict[str, nn.Module],
                        graph: fx.Graph) -> fx.Node | None:
    """For torch.cat(maps, 1) of gated blocks' outputs, torch.cat(their gates, 1); else None."""
    tensors = node.args[0] if node.args else node.kwargs.get("tensors")
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", node.kwargs.get("axis", 0))
    if dim not in (1, -3) or not isinstance(tensors, (list, tuple)):
        return None
    gates = [_feeding_gate(t, outputs, modules, graph) if isinstance(t, fx.Node) else None for t in tensors]
    if any(g is None for g in gates):
        return None
    with graph.inserting_after(node):
        return graph.call_function(torch.cat, (gates, 1))


def insert_gates(net: nn.Module, preprocess: nn.Module, *, modular: bool = True, gate_first: bool = False,
                 what: str = "the model") -> GatedGraph:
    """Turn a plain CNN (its forward returning logits) into a modular one; see the module docstring.

    With `modular=False`, every conv-BN pair becomes a plain block of the same name: the standard
    counterpart, into which a modular checkpoint's weights (less its generators) load. `net` is
    consumed (its conv and BN modules move into the blocks). Raises MwtError when fx cannot trace
    it or it has no conv followed by a batch norm.
    """
    gm = trace(net, what)
    pairs = _conv_bn_pairs(gm)
    if not pairs:
        raise MwtError(f"{what} has no conv followed by a batch norm, so there is nothing to gate "
                       "(mwt gates every conv-BN pair)")
    modules = dict(gm.named_modules())
    first_conv = next(n for n in gm.graph.nodes if n.op == "call_module" and isinstance(modules.get(n.target), nn.Conv2d))
    outputs: dict[fx.Node, fx.Node | None] = {}  # a block's output node -> its gate node (None: plain)
    gate_nodes: dict[str, fx.Node] = {}
    gated, passthrough, plain = [], [], []
    renames: list[tuple[str, str]] = []
    graph = gm.graph
    for conv_node, bn_node in pairs:
        conv, bn = modules[conv_node.target], modules[bn_node.target]
        name = str(conv_node.target)
        renames += [(name, f"{name}.conv"), (str(bn_node.target), f"{name}.bn")]
        if modular and conv.groups > 1:  # depthwise or grouped: its input's gates pass through, or it stays plain
            per_channel = conv.in_channels == conv.out_channels
            feeder = _feeding_gate(conv_node.args[0], outputs, modules, graph) if per_channel else None
            if feeder is not None:
                _set_submodule(gm, name, PassThroughConv(conv, bn))
                conv_node.args = (conv_node.args[0], feeder)
                bn_node.replace_all_uses_with(conv_node)
                graph.erase_node(bn_node)
                outputs[conv_node] = feeder  # a pass-through block's output keeps its feeder's channels
                passthrough.append(name)
                continue
        is_gated = modular and conv.groups == 1 and (conv_node is not first_conv or gate_first)
        _set_submodule(gm, name, GatedConv.wrap(conv, bn, gated=is_gated))
        with graph.inserting_after(conv_node):
            y = graph.call_function(operator.getitem, (conv_node, 0))
        bn_node.replace_all_uses_with(y)
        graph.erase_node(bn_node)
        if is_gated:
            with graph.inserting_after(y):
                gate_nodes[name] = graph.call_function(operator.getitem, (conv_node, 1))
            gated.append(name)
        else:
            plain.append(name)
        outputs[y] = gate_nodes.get(name)
    output = next(n for n in graph.nodes if n.op == "output")
    logits = output.args[0]
    if not isinstance(logits, fx.Node):
        raise MwtError(f"{what} must return one tensor of logits; its forward returns {type(logits).__name__}")
    body = fx.GraphModule(gm, graph, class_name=type(net).__name__)
    # Gates in named_modules order, the order gated_layers lists them in (and checkpoints keep).
    order = [n for n, m in body.named_modules() if isinstance(m, GatedConv) and m.gate is not None]
    output.args = ((logits, [gate_nodes[n] for n in order]),)
    body.graph.lint()
    body.recompile()
    return GatedGraph(preprocess, body, GatingPlan(tuple(gated), tuple(passthrough), tuple(plain), tuple(renames)))
