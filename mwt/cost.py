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

A channel concatenation makes a layer's input a row of *segments*, each from its own stream (or
whole), so the probe watches each input channel, not the input as one: the channels that a layer
opened reaches, in order, are the segment it writes. A layer's input costs the sum over its
segments. What still moves channels (a shuffle, a permutation, a concatenation along another axis)
is refused with one MwtError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

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
class Segment:
    """`width` consecutive input channels of a layer (features, for a linear layer reading a
    flattened map) from `offset` on, read from one channel stream (None: always whole)."""

    offset: int
    width: int
    stream: int | None


@dataclass(frozen=True)
class LayerCost:
    """One conv block or linear layer: its cost at full width and where its channels come from."""

    name: str
    macs: int  # multiply-accumulates per sample at full width
    in_channels: int
    out_channels: int
    gate: str | None  # the gated layer whose gate selects this layer's output channels (None: all computed)
    segments: tuple[Segment, ...]  # its input, end to end (one segment unless it reads a concatenation)
    logits: bool = False  # its outputs are the classes (a module keeps only its own)
    channelwise: bool = False  # a pass-through depthwise conv: its outputs are its input's channels
    conv: bool = False  # a convolution (runtimes compute these in channel blocks; see `blocked_rate`)

    @property
    def stream(self) -> int | None:
        """The stream its whole input is read from; None when the input is always whole or is
        made of several segments (a concatenation: see `segments`)."""
        return self.segments[0].stream if len(self.segments) == 1 else None

    def input_fraction(self, kept: Sequence[float]) -> float:
        """The fraction of its input a module keeps, given each stream's kept fraction."""
        if len(self.segments) == 1:  # the common case, computed as it always was (the same last bits)
            return 1.0 if self.stream is None else kept[self.stream]
        total = sum(seg.width for seg in self.segments)
        kept_width = sum(seg.width * (1.0 if seg.stream is None else kept[seg.stream]) for seg in self.segments)
        return kept_width / max(total, 1)


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
            f_in = layer.input_fraction(kept)
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

    def kernel_costs(self, gated: Sequence[str]) -> list[float]:
        """Per gated layer, the MACs per sample that one of its kernels costs at full width: its
        own conv's share (that conv's MACs / its outputs) plus its readers' (a reader's MACs / its
        input channels), the readers' part split among a stream's writers. The first convs, at
        full resolution, cost the most per kernel; the last, on small maps, the least."""
        costs = []
        for name in gated:
            own = sum(layer.macs / max(layer.out_channels, 1) for layer in self.layers
                      if layer.gate == name and not layer.logits and not layer.channelwise)
            stream = self.stream_of(name)
            read = 0.0
            if stream is not None:
                for layer in self.layers:
                    if any(seg.stream == stream for seg in layer.segments):
                        read += layer.macs / max(sum(seg.width for seg in layer.segments), 1)
                read /= len(self.streams[stream])
            costs.append(own + read)
        return costs

    def expected_fraction(self, gates: Mapping[str, torch.Tensor], block: int = 1, free: int = 0) -> torch.Tensor:
        """Per sample, the fraction of the network's MACs its open gates use: (B,), differentiable.

        The value counts open kernels (gate > 0) exactly; the gradient is that of the gate values
        (straight-through), so minimizing it closes the gates of the costliest layers first.
        With `block` N > 1, each conv's channels are counted as a blocked convolution computes
        them (`blocked_rate`): a conv that keeps 2 of 16 outputs then costs all 16, so the
        gradient pushes on the layer feeding it, whose kernels are what can make it cheaper.
        With `free` N > 0, each stream's first N open channels cost nothing (a stream keeping fewer
        is counted as keeping N, with no gradient): the term then stops narrowing a layer below N
        channels, where the early, high-resolution layers are cheapest per channel to keep whole
        enough to see.
        """
        on = {n: g + ((g > 0).to(g.dtype) - g).detach() for n, g in gates.items()}
        rates = []
        for members in self.streams:
            closed = torch.ones_like(on[members[0]])
            for m in members:
                closed = closed * (1 - on[m])
            rate = (1 - closed).mean(1)  # (B,)
            rates.append(torch.clamp_min(rate, min(1.0, free / closed.shape[1])) if free else rate)
        batch = next(iter(gates.values())).shape[0]
        device = next(iter(gates.values())).device
        total = torch.zeros(batch, device=device)
        for layer in self.layers:
            factor = _input_rate(layer, rates, batch, device)
            blocked = block > 1 and layer.conv
            if blocked:
                factor = blocked_rate(factor, layer.in_channels, block, narrow_whole=False)
            out_stream = self.stream_of(layer.gate) if layer.gate is not None else None
            if out_stream is not None and not layer.logits and not layer.channelwise:
                out_rate = rates[out_stream]
                factor = factor * (blocked_rate(out_rate, layer.out_channels, block) if blocked else out_rate)
            total = total + layer.macs * factor
        return total / max(self.total_macs, 1)


def blocked_rate(rate: torch.Tensor, width: int, block: int, *, narrow_whole: bool = True) -> torch.Tensor:
    """A kept fraction of `width` channels as a blocked convolution computes them: (B,).

    onnxruntime's CPU convolutions work on blocks of `block` channels (8 with AVX2, 16 with
    AVX-512): a conv's outputs are rounded up to whole blocks, and so are its inputs once they
    fill a block (a narrower input is read as it is). Measured on an AVX-512 machine: a pair
    module's conv keeping 2 of 16 outputs at full resolution took as long as the plain model's
    (645 against 621 us at batch 32), 27% of the module's time. The value is rounded; the
    gradient is `rate`'s (straight-through). `narrow_whole=False` is the input side.
    """
    count = torch.round(rate * width)
    padded = torch.clamp(torch.ceil(count / block) * block, max=width)
    if not narrow_whole:
        padded = torch.where(count < block, count, padded)
    return rate + (padded / width - rate).detach()


def _input_rate(layer: LayerCost, rates: list[torch.Tensor], batch: int, device: torch.device) -> torch.Tensor:
    """`LayerCost.input_fraction` per sample, from each stream's (B,) kept rate: (B,), differentiable."""
    if len(layer.segments) == 1:
        ones = torch.ones(batch, device=device)
        return ones if layer.stream is None else ones * rates[layer.stream]
    total = sum(seg.width for seg in layer.segments)
    rate = torch.zeros(batch, device=device)
    for seg in layer.segments:
        rate = rate + (seg.width / total) * (1.0 if seg.stream is None else rates[seg.stream])
    return rate


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
# less than as many forwards of one sample, and the hooks keep one flag per channel and sample, not the maps.
PROBES_PER_PASS = 16

Shapes = dict[str, tuple[tuple[int, ...], tuple[int, ...]]]  # layer -> (input shape, output shape)
Reached = dict[str, dict[str, np.ndarray]]  # opened layer ("": none) -> reader -> (C_in,) nonzero input channels


def _live_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, C) flags: which channels (features, for a flat input) of each sample are nonzero."""
    x = x.abs()
    return (x.flatten(2).amax(2) if x.dim() > 2 else x) > 0


class _ConcatWatch(TorchFunctionMode):
    """Notes each concatenation along an axis other than the channel axis whose inputs carry some
    opened layer's channels (zero in one probing sample, nonzero in another): such a layout the
    streams cannot describe. Calls are told apart by their order in the forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.nonzero: dict[int, bool] = {}
        self.zero: dict[int, bool] = {}
        self.axis: dict[int, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 (torch's protocol)
        kwargs = kwargs or {}
        if func in (torch.cat, torch.concat, torch.concatenate):
            tensors = args[0] if args else kwargs.get("tensors", ())
            dim = args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis", 0))
            maps = [t for t in tensors if isinstance(t, torch.Tensor) and t.dim() >= 2]
            if maps and dim % maps[0].dim() != 1:
                i, self.calls = self.calls, self.calls + 1
                for t in maps:
                    flags = t.flatten(1).abs().amax(1) > 0
                    self.nonzero[i] = self.nonzero.get(i, False) or bool(flags.any())
                    self.zero[i] = self.zero.get(i, False) or not bool(flags.all())
                self.axis[i] = dim % maps[0].dim()
        return func(*args, **kwargs)

    def start_pass(self) -> None:
        self.calls = 0

    def check(self) -> None:
        """One MwtError if a concatenation along another axis carried an opened layer's output."""
        for i, axis in sorted(self.axis.items()):
            if self.nonzero[i] and self.zero[i]:
                raise MwtError(f"the network concatenates gated convs' outputs along axis {axis}, not the channel "
                               "axis (1): only channel concatenation between gated convs is supported")


@torch.no_grad()
def cost_model(model: nn.Module, input_shape: tuple[int, ...]) -> CostModel:
    """Probe `model` (on its current device) and return its cost model. The model's mode is kept.

    Dataflow is probed in eval mode, where every sample is computed on its own: sample i of a
    probing batch opens one layer (it writes positive values into every channel, whatever its
    input; every other layer writes zeros), and the input channels that are nonzero in sample i
    are the ones its readers read from that layer.
    """
    was_training = model.training
    model.eval()
    layers = _boundaries(model)
    names = [n for n, _ in layers]
    passing = [(n, m) for n, m in model.named_modules() if isinstance(m, PassThroughConv)]
    try:
        shapes, pass_shapes, logits_layer, reached = _probe(model, input_shape, layers, passing)
    finally:
        model.train(was_training)

    gated = {n for n, m in layers if isinstance(m, GatedConv) and m.gate is not None}
    widths = {n: out[1] for n, (_, out) in shapes.items() if len(out) > 2}  # the writers of feature maps
    runs = {reader: _runs(reader, reached, names, widths) for reader in [*names, *pass_shapes]}
    # Writers into one stream: every pair of layers read by the same run of input channels.
    streams_of: UnionFind[str] = UnionFind()
    for reader_runs in runs.values():
        for _, _, writers in reader_runs:
            for w in writers:
                streams_of.union(w, writers[0])
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

    def segments(reader: str) -> tuple[Segment, ...]:
        return tuple(Segment(offset, width, stream_index.get(find(writers[0])) if writers else None)
                     for offset, width, writers in runs[reader])

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
        costs.append(LayerCost(
            name=name, macs=macs, in_channels=c_in, out_channels=c_out,
            gate=name if name in gated else None, segments=segments(name), logits=name == logits_layer,
            conv=isinstance(m, GatedConv),
        ))
    for name, m in passing:
        conv = m.conv
        h, w = pass_shapes[name][2:]
        macs = h * w * conv.out_channels * (conv.in_channels // conv.groups) * int(torch.tensor(conv.kernel_size).prod())
        costs.append(LayerCost(name=name, macs=macs, in_channels=conv.in_channels, out_channels=conv.out_channels,
                               gate=None, segments=segments(name), channelwise=True))
    return CostModel(tuple(costs), tuple(streams))


def _probe(model: nn.Module, input_shape: tuple[int, ...], layers: list[tuple[str, nn.Module]],
           passing: list[tuple[str, nn.Module]]) -> tuple[Shapes, dict[str, tuple[int, ...]], str | None, Reached]:
    """Run the probing passes (see `cost_model`): each layer's (input, output) shapes, each
    pass-through conv's output shape, the logits layer, and for every opened layer ("": none)
    which input channels of every reader are then nonzero."""
    names = [n for n, _ in layers]
    device = next(model.parameters()).device
    inputs: dict[str, torch.Tensor] = {}  # the first pass: each layer's input; probing: (B, C) nonzero flags
    outputs: dict[str, torch.Tensor] = {}
    state: dict[str, list[str] | None] = {"open": None}  # probing: the layer each sample opens ("": none)

    def opened(name: str, like: torch.Tensor) -> torch.Tensor:
        """Samples that open `name`, shaped to broadcast against `like`."""
        flags = torch.tensor([o == name for o in state["open"] or ()], device=like.device)
        return flags.view(-1, *([1] * (like.dim() - 1)))

    def pre_hook(name: str):  # noqa: ANN202
        def hook(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0]
            inputs[name] = x if state["open"] is None else _live_channels(x)
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
            return torch.ones_like(out) * _live_channels(args[0])[:, :, None, None].to(out.dtype)
        return hook

    def keep_dead(_m: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> object:
        # While probing, a batch norm outside a conv block (one after a concatenation) keeps a zero
        # channel zero, as if its shift were 0 (it is, untrained): trained, BN(0) would make every
        # channel it shifts read whole, and the channels the segments are found from would blur.
        if state["open"] is None:
            return None
        return out * (_live_channels(args[0])[(...,) + (None,) * (out.dim() - 2)]).to(out.dtype)

    handles = []
    for m in _standalone_batchnorms(model):
        handles.append(m.register_forward_hook(keep_dead))
    for name, m in layers:
        handles.append(m.register_forward_pre_hook(pre_hook(name)))
        handles.append(m.register_forward_hook(post_hook(name)))
    for name, m in passing:
        handles.append(m.register_forward_pre_hook(pre_hook(name)))
        handles.append(m.register_forward_hook(pass_hook(name)))
    watch = _ConcatWatch()
    try:
        logits, _ = model(torch.rand(2, *input_shape, device=device))
        shapes = {n: (tuple(inputs[n].shape), tuple(outputs[n].shape)) for n in names}
        pass_shapes = {n: tuple(outputs[n].shape) for n, _ in passing}
        logits_layer = next((n for n in names if outputs[n] is logits), None)
        probed = [*names, *pass_shapes]
        reached: Reached = {}
        opens = ["", *names]
        for i in range(0, len(opens), PROBES_PER_PASS):
            chunk = opens[i:i + PROBES_PER_PASS]
            state["open"] = chunk
            inputs.clear()
            watch.start_pass()
            with watch:
                model(torch.rand(len(chunk), *input_shape, device=device))
            flags = {n: inputs[n].cpu().numpy() for n in probed if n in inputs}  # one device read per layer
            for j, open_ in enumerate(chunk):
                reached[open_] = {n: f[j] for n, f in flags.items()}
    finally:
        state["open"] = None
        for h in handles:
            h.remove()
    watch.check()
    return shapes, pass_shapes, logits_layer, reached


def _standalone_batchnorms(model: nn.Module) -> list[nn.Module]:
    """The batch norms that are not part of a conv block (a conv block's BN follows its conv)."""
    blocks = {n for n, m in model.named_modules() if isinstance(m, (GatedConv, PassThroughConv))}
    return [m for n, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and n.rpartition(".")[0] not in blocks]


def _runs(reader: str, reached: Reached, names: list[str], widths: dict[str, int]) -> list[tuple[int, int, list[str]]]:
    """The reader's input as runs of consecutive channels that the same layers write, end to end:
    (offset, width, writers; none: always whole, read from the image or a parameterized op). A run
    must be a whole number of its writers' outputs, laid one to one: anything else means an op
    moved channels between them (a shuffle, a permutation), which is one MwtError."""
    whole = reached[""][reader]
    reach = np.stack([reached[w].get(reader, np.zeros_like(whole)) & ~whole for w in names])  # (writers, C)
    runs: list[tuple[int, int, list[str]]] = []
    start = 0
    for c in range(1, len(whole) + 1):
        if c < len(whole) and whole[c] == whole[start] and np.array_equal(reach[:, c], reach[:, start]):
            continue
        writers = [] if whole[start] else [names[i] for i in np.flatnonzero(reach[:, start])]
        _check_run(reader, start, c - start, writers, widths)
        runs.append((start, c - start, writers))
        start = c
    return runs


def _check_run(reader: str, offset: int, width: int, writers: list[str], widths: dict[str, int]) -> None:
    """Refuse a run of input channels that is not a whole number of each writer's outputs (a linear
    layer's features, such as a flattened map's, are not checked against it)."""
    for writer in sorted(writers):  # sorted: the same writer is named every run
        if writer in widths and width % widths[writer]:
            raise MwtError(
                f"layer {reader} reads {width} channels ({offset}..{offset + width - 1}) from {writer}, which writes "
                f"{widths[writer]}: an op that moves channels (a channel shuffle or permutation) between gated "
                "convs is not supported; channel concatenation is")
