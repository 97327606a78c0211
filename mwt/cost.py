"""What a module costs: the FLOPs of its kept kernels, from the model's own dataflow.

A conv's cost is proportional to (input channels kept) x (output channels kept), so a module's
cost depends on which gated layer feeds which: in a VGG each conv reads the previous conv's
channels, in a ResNet several convs write into one residual stream that later convs read. This
is found once per model by probing, not declared per architecture: with every layer's output
silenced except one, the layers whose input is then nonzero read that layer's channels.
Parameter-free ops (ReLU, pooling, residual adds) pass channels through; every conv block and
linear layer is a boundary. The image itself reaches the first conv, so its input is whole.
A depthwise conv that passes its feeder's gates through (`PassThroughConv`) is no boundary: it
keeps exactly its input's channels, so its cost scales with its input stream's width alone.
Convs without a batch norm (squeeze-and-excitation's) are part of the dataflow, uncounted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mwt.core.errors import MwtError
from mwt.core.unionfind import UnionFind
from mwt.models import GatedConv, MaskGenerator, PassThroughConv

Streams = tuple[tuple[str, ...], ...]  # per channel stream, the gated layers writing into it


def as_mask(mask: object) -> np.ndarray:
    """A (C,) kernel mask, numpy or torch, as a numpy bool array."""
    if isinstance(mask, torch.Tensor):
        return mask.detach().cpu().numpy().astype(bool)
    return np.asarray(mask, dtype=bool)


def union_of(members: Sequence[str], kept: Mapping[str, object]) -> np.ndarray:
    """The channels a stream keeps: the union of its writers' kept kernels, (C,) bool.

    Every writer of a stream computes the union (a kernel one writer drops is still written by
    another), so this is the one rule for a stream's width: the FLOPs count, the alignment, the
    compact network and the compiler's channel plan (checked in tests/test_channels.py) follow it.
    `kept` maps gated layers to (C,) masks, numpy or torch.
    """
    union = np.zeros(np.shape(kept[members[0]]), dtype=bool)
    for m in members:
        union |= as_mask(kept[m])
    return union


@dataclass(frozen=True)
class LayerCost:
    """One conv block or linear layer: its cost at full width and where its channels come from."""

    name: str
    macs: int  # multiply-accumulates per sample at full width
    in_channels: int
    out_channels: int
    gate: str | None  # the gated layer whose gate selects this layer's output channels (None: all computed)
    stream: int | None  # the channel stream its input is read from (None: the input is always whole)
    logits: bool = False  # its outputs are the classes (a module keeps only its own)
    channelwise: bool = False  # a pass-through depthwise conv: its outputs are its input's channels


@dataclass(frozen=True)
class CostModel:
    """Costs of a network's layers and the channel streams its gated layers write into.

    `streams[i]` lists the gated layers writing into stream i; a residual sum makes several. A
    stream that a plain (ungated) layer also writes into is always whole and is not listed.
    """

    layers: tuple[LayerCost, ...]
    streams: Streams

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def total_flops(self) -> int:
        return 2 * self.total_macs

    def stream_of(self, gated_layer: str) -> int | None:
        """The stream a gated layer writes into (None when a plain layer writes there too)."""
        for i, members in enumerate(self.streams):
            if gated_layer in members:
                return i
        return None

    def stream_channels(self, kept: Mapping[str, object]) -> list[np.ndarray]:
        """Per stream, the channels a module keeps (`union_of` its writers' kept kernels)."""
        return [union_of(members, kept) for members in self.streams]

    def kept_macs(self, retained: Mapping[str, object], num_outputs: int | None = None) -> int:
        """MACs per sample of the network that keeps only `retained` kernels ({gated layer: (C,) bool}).

        A stream keeps the union of its writers' kernels (each writer computes the union), and a
        logits layer keeps `num_outputs` rows (all when None).
        """
        kept = [float(union.sum()) / max(union.size, 1) for union in self.stream_channels(retained)]
        total = 0.0
        for layer in self.layers:
            f_in = 1.0 if layer.stream is None else kept[layer.stream]
            out_stream = self.stream_of(layer.gate) if layer.gate is not None else None
            if layer.channelwise:
                f_out = 1.0  # kept channels are counted once: input and output are the same channels
            elif layer.logits and num_outputs is not None:
                f_out = num_outputs / layer.out_channels
            else:
                f_out = 1.0 if out_stream is None else kept[out_stream]
            total += layer.macs * f_in * f_out
        return int(round(total))

    def kept_fraction(self, retained: Mapping[str, object], num_outputs: int | None = None) -> float:
        """`kept_macs` as a fraction of the whole network's."""
        return self.kept_macs(retained, num_outputs) / max(self.total_macs, 1)

    def expected_fraction(self, gates: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Per sample, the fraction of the network's MACs its open gates use: (B,), differentiable.

        The value counts open kernels (gate > 0) exactly; the gradient is that of the gate values
        (straight-through), so minimizing it closes the gates of the costliest layers first.
        """
        on = {n: g + ((g > 0).to(g.dtype) - g).detach() for n, g in gates.items()}
        rates = []
        for members in self.streams:
            closed = torch.ones_like(on[members[0]])
            for m in members:
                closed = closed * (1 - on[m])
            rates.append((1 - closed).mean(1))  # (B,)
        batch = next(iter(gates.values())).shape[0]
        device = next(iter(gates.values())).device
        total = torch.zeros(batch, device=device)
        for layer in self.layers:
            factor = torch.ones(batch, device=device)
            if layer.stream is not None:
                factor = factor * rates[layer.stream]
            out_stream = self.stream_of(layer.gate) if layer.gate is not None else None
            if out_stream is not None and not layer.logits and not layer.channelwise:
                factor = factor * rates[out_stream]
            total = total + layer.macs * factor
        return total / max(self.total_macs, 1)


def _boundaries(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Conv blocks and linear layers outside the mask generators, in registration order."""
    generators = [n for n, m in model.named_modules() if isinstance(m, MaskGenerator)]
    out = []
    for name, m in model.named_modules():
        if isinstance(m, GatedConv) or (
            isinstance(m, nn.Linear) and not any(name.startswith(g + ".") for g in generators)
        ):
            out.append((name, m))
    return out


# Layers opened per probing forward pass, one per sample: a forward of a batch this big costs far
# less than as many forwards of one sample, and the hooks keep one flag per sample, not the maps.
PROBES_PER_PASS = 16


@torch.no_grad()
def cost_model(model: nn.Module, input_shape: tuple[int, ...]) -> CostModel:
    """Probe `model` (on its current device) and return its cost model. The model's mode is kept.

    Dataflow is probed in eval mode, where every sample is computed on its own: sample i of a
    probing batch opens one layer (it writes positive values into every channel, whatever its
    input; every other layer writes zeros), and the layers whose input is nonzero in sample i are
    the readers of that layer's output.
    """
    was_training = model.training
    model.eval()
    layers = _boundaries(model)
    names = [n for n, _ in layers]
    passing = [(n, m) for n, m in model.named_modules() if isinstance(m, PassThroughConv)]
    device = next(model.parameters()).device
    inputs: dict[str, torch.Tensor] = {}  # the first pass: each layer's input; probing: (B,) nonzero flags
    outputs: dict[str, torch.Tensor] = {}
    state: dict[str, list[str] | None] = {"open": None}  # probing: the layer each sample opens ("": none)

    def opened(name: str, like: torch.Tensor) -> torch.Tensor:
        """Samples that open `name`, shaped to broadcast against `like`."""
        flags = torch.tensor([o == name for o in state["open"] or ()], device=like.device)
        return flags.view(-1, *([1] * (like.dim() - 1)))

    def pre_hook(name: str):  # noqa: ANN202
        def hook(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0]
            inputs[name] = x if state["open"] is None else x.abs().flatten(1).amax(1) > 0
        return hook

    def post_hook(name: str):  # noqa: ANN202
        def hook(_m: nn.Module, _args: object, out: object) -> object:
            if state["open"] is None:
                outputs[name] = out[0] if isinstance(out, tuple) else out  # type: ignore[index]
                return None
            feature = out[0] if isinstance(out, tuple) else out  # a conv block: (feature map, gate)
            written = torch.where(opened(name, feature), torch.rand_like(feature) + 1, torch.zeros_like(feature))
            return (written, out[1]) if isinstance(out, tuple) else written  # type: ignore[index]
        return hook

    def pass_hook(name: str):  # noqa: ANN202
        def hook(_m: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> object:
            # While probing, a pass-through conv passes channel liveness on: nonzero exactly where its
            # input channel is (its BN bias and gates would otherwise blur which writer reached it).
            if state["open"] is None:
                outputs[name] = out
                return None
            live = (args[0].abs().amax(dim=(2, 3), keepdim=True) > 0).to(out.dtype)
            return torch.ones_like(out) * live
        return hook

    handles = []
    for name, m in layers:
        handles.append(m.register_forward_pre_hook(pre_hook(name)))
        handles.append(m.register_forward_hook(post_hook(name)))
    for name, m in passing:
        handles.append(m.register_forward_pre_hook(pre_hook(name)))
        handles.append(m.register_forward_hook(pass_hook(name)))
    try:
        logits, _ = model(torch.rand(2, *input_shape, device=device))
        shapes = {n: (tuple(inputs[n].shape), tuple(outputs[n].shape)) for n in names}
        pass_shapes = {n: tuple(outputs[n].shape) for n, _ in passing}
        logits_layer = next((n for n in names if outputs[n] is logits), None)
        probed = [*names, *pass_shapes]

        read_by: dict[str, set[str]] = {}  # opened layer ("": none, the image alone) -> layers reading it
        opens = ["", *names]
        for i in range(0, len(opens), PROBES_PER_PASS):
            chunk = opens[i:i + PROBES_PER_PASS]
            state["open"] = chunk
            inputs.clear()
            model(torch.rand(len(chunk), *input_shape, device=device))
            nonzero = {n: inputs[n].tolist() for n in probed if n in inputs}  # one device read per layer
            for j, open_ in enumerate(chunk):
                read_by[open_] = {n for n, flags in nonzero.items() if flags[j]}
        whole = read_by[""]  # fed by the image itself
        read_from: dict[str, set[str]] = {n: set() for n in probed}
        for name in names:
            for reader in read_by[name] - whole:
                read_from[reader].add(name)
    finally:
        state["open"] = None
        for h in handles:
            h.remove()
        model.train(was_training)

    _check_channels_follow(read_from, whole, shapes, pass_shapes)
    gated = {n for n, m in layers if isinstance(m, GatedConv) and m.gate is not None}
    # Writers into one stream: every pair of layers read by the same reader.
    streams_of: UnionFind[str] = UnionFind()
    for writers in read_from.values():
        for w in writers:
            streams_of.union(w, next(iter(writers)))
    find = streams_of.find
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(find(n), []).append(n)
    # A stream with a plain writer (or read straight from the image) is always whole.
    full_roots = {find(n) for n in names if n not in gated}
    stream_index: dict[str, int] = {}
    streams: list[tuple[str, ...]] = []
    for root, members in groups.items():
        if root in full_roots or not any(m in gated for m in members):
            continue
        stream_index[root] = len(streams)
        streams.append(tuple(m for m in names if m in members))

    costs = []
    for name, m in layers:
        (in_shape, out_shape) = shapes[name]
        if isinstance(m, GatedConv):
            conv = m.conv
            macs = int(torch.tensor(out_shape[1:]).prod()) * (conv.in_channels // conv.groups) * int(
                torch.tensor(conv.kernel_size).prod())
            c_in, c_out = conv.in_channels, conv.out_channels
        else:
            macs, c_in, c_out = m.in_features * m.out_features, m.in_features, m.out_features
        writers = read_from[name]
        stream = None
        if name not in whole and writers:
            stream = stream_index.get(find(next(iter(writers))))
        costs.append(LayerCost(
            name=name, macs=macs, in_channels=c_in, out_channels=c_out,
            gate=name if name in gated else None, stream=stream, logits=name == logits_layer,
        ))
    for name, m in passing:
        conv = m.conv
        h, w = pass_shapes[name][2:]
        macs = h * w * conv.out_channels * (conv.in_channels // conv.groups) * int(torch.tensor(conv.kernel_size).prod())
        writers = read_from[name]
        stream = None
        if name not in whole and writers:
            stream = stream_index.get(find(next(iter(writers))))
        costs.append(LayerCost(name=name, macs=macs, in_channels=conv.in_channels, out_channels=conv.out_channels,
                               gate=None, stream=stream, channelwise=True))
    return CostModel(tuple(costs), tuple(streams))


def _check_channels_follow(read_from: dict[str, set[str]], whole: set[str],
                           shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]],
                           pass_shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse a conv that reads channels its writers do not write one to one (a concatenation or
    a channel shuffle between them): the cost model's streams, and every module of the network,
    would be wrong, so this is one MwtError when training starts."""
    for reader, writers in read_from.items():
        if reader in whole:
            continue
        width = shapes[reader][0] if reader in shapes else pass_shapes[reader]
        if len(width) != 4:
            continue  # a linear layer may read a flattened map: C x H x W features
        for writer in sorted(writers):  # sorted: the same writer is named every run
            out = shapes[writer][1]
            if len(out) == 4 and out[1] != width[1]:
                raise MwtError(f"layer {reader} reads {width[1]} channels where {writer} writes {out[1]}: channel "
                               "concatenation (or any op that moves channels) between gated convs is not supported yet")

