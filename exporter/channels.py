"""Analysis pass: which channels of every tensor the compiled module must compute.

Tensors whose channel axes are tied together (through elementwise ops, pools, residual adds,
gate multiplications) form one *channel space*; a conv or linear layer starts a new one. A
Concat along the channel axis starts a *composite* space: its channels are its inputs' spaces
laid end to end (the parts), so it keeps exactly its parts' kept channels, offset, and whatever
its own tensors need is kept in the part it comes from. For
every tensor we work out which channels can be nonzero (`live`, forward) and which influence the
outputs (`needed`, backward). Each space keeps the union of live-and-needed channels over its
tensors, so every producer into a space computes the same channels and a residual Add needs no
run-time scatter: the cheapest correct construction when branches of an Add retain different
kernels is to let each branch compute the union, with the gate of a kernel it does not retain
held at zero (a constant mask), which costs a few extra channels but no extra nodes.

The analysis runs in four phases: `find_spaces`, `forward_live`, `backward_needed`, `kept_channels`.

Guarantee: on every kept channel, every tensor of the compiled graph equals the same tensor of
the original graph; a channel is dropped only where it is zero or cannot affect an output.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import onnx_graphsurgeon as gs

from exporter.errors import ExportError
from mwt.core.unionfind import UnionFind

# Ops whose output channel c depends only on input channel c (broadcasting aside).
ELEMENTWISE = {"Relu", "LeakyRelu", "Tanh", "Sigmoid", "Clip", "Identity", "Dropout", "Add", "Sub", "Mul", "Div",
               "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
               "ReduceMean", "ReduceMax", "Unsqueeze", "Squeeze", "Flatten", "Pad", "HardSwish", "HardSigmoid",
               "Elu", "Selu", "Gelu", "Mish", "Softplus"}
# Of those, the ones that map an all-zero channel to an all-zero channel.
ZERO_PRESERVING = {"Relu", "LeakyRelu", "Tanh", "Identity", "Dropout", "MaxPool", "AveragePool", "GlobalAveragePool",
                   "GlobalMaxPool", "ReduceMean", "ReduceMax", "Unsqueeze", "Squeeze", "Flatten", "HardSwish", "Elu",
                   "Selu", "Gelu", "Mish"}
# Ops that mix input channels into new output channels through a weight initializer.
PRODUCERS = {"Conv", "Gemm", "MatMul"}


class NodeKind(Enum):
    """What a node does to channel spaces."""

    JOIN = "join"  # elementwise along the channel axis: its channel tensors share one space
    PRODUCER = "producer"  # a conv or linear layer with a constant weight: its output starts a new space
    CONCAT = "concat"  # a Concat along the channel axis: its output's space is its inputs' laid end to end
    OPAQUE = "opaque"  # anything else: every channel it touches is kept


def channel_count(t: gs.Tensor) -> int | None:
    """Size of axis 1 of a tensor of rank >= 2 (the channel or feature axis), if known."""
    shape = t.shape
    if shape is None or len(shape) < 2 or not isinstance(shape[1], (int, np.integer)):
        return None
    return int(shape[1])


def constant_channel_values(c: gs.Constant, rank: int, channels: int) -> np.ndarray | None:
    """A constant's values along the channel axis of a rank-`rank` tensor it broadcasts against.

    Returns a (channels, k) array (k = the other elements) when the constant varies along that
    axis, None when it broadcasts over it (size 1 there, or no such axis).
    """
    values = np.asarray(c.values)
    axis = 1 - (rank - values.ndim)  # numpy broadcasting aligns trailing axes
    if axis < 0 or values.ndim == 0 or values.shape[axis] == 1:
        return None
    if values.shape[axis] != channels:
        raise ExportError(
            f"constant {c.name} has {values.shape[axis]} entries on the channel axis where the graph has {channels}"
        )
    return np.moveaxis(values, axis, 0).reshape(channels, -1)


@dataclass(frozen=True)
class Part:
    """One input of a channel Concat: channels [offset, offset + width) of the composite space are
    the channels of space `space`."""

    space: int
    offset: int
    width: int


@dataclass
class ChannelSpaces:
    """Phase 1: every channel tensor's space, and how each node treats channels."""

    tensors: dict[str, gs.Variable]  # tensor name -> tensor, for every tensor with a channel axis
    space_of: dict[str, int]  # tensor name -> space id
    repeat: dict[str, int]  # tensor name -> elements per channel on axis 1 (H*W after Flatten, else 1)
    width: dict[int, int]  # space id -> original channel count
    kinds: dict[int, NodeKind]  # id(node) -> kind
    pinned_tensors: set[str]  # graph inputs/outputs and tensors an opaque node touches
    parts: dict[int, tuple[Part, ...]] = field(default_factory=dict)  # composite space id -> its parts, in order

    def channels(self, t: gs.Tensor) -> int:
        return self.width[self.space_of[t.name]]


@dataclass
class ChannelPlan:
    """The result of the analysis: the space of every channel tensor, and each space's kept channels."""

    space_of: dict[str, int]  # tensor name -> space id
    repeat: dict[str, int]  # tensor name -> elements per channel on axis 1 (H*W after Flatten, else 1)
    kept: dict[int, np.ndarray]  # space id -> sorted kept channel indices
    width: dict[int, int]  # space id -> original channel count
    pinned: set[int] = field(default_factory=set)  # spaces that must keep every channel
    parts: dict[int, tuple[Part, ...]] = field(default_factory=dict)  # composite space id -> its parts, in order

    def kept_of(self, tensor: gs.Tensor) -> np.ndarray | None:
        """Kept channel indices of a tensor, or None if it has no channel space."""
        sid = self.space_of.get(tensor.name)
        return None if sid is None else self.kept[sid]

    def columns_of(self, tensor: gs.Tensor) -> np.ndarray | None:
        """Kept indices along axis 1 of a tensor, expanded by its repeat (for a Flatten's output)."""
        kept = self.kept_of(tensor)
        if kept is None:
            return None
        r = self.repeat.get(tensor.name, 1)
        return (kept[:, None] * r + np.arange(r)[None, :]).reshape(-1)


def _clip_keeps_zero(node: gs.Node) -> bool:
    """A Clip whose range holds 0 (ReLU6 is Clip(0, 6)) maps a zero channel to zero."""
    if node.op != "Clip":
        return False
    bounds = []
    for i, attr, default in ((1, "min", -np.inf), (2, "max", np.inf)):
        t = node.inputs[i] if len(node.inputs) > i else None
        if t is not None and t.name:  # an empty name is an omitted optional input
            if not isinstance(t, gs.Constant):
                return False
            bounds.append(float(np.asarray(t.values)))
        else:
            bounds.append(float(node.attrs.get(attr, default)))
    return bounds[0] <= 0 <= bounds[1]


def batchnorm_shift(node: gs.Node) -> np.ndarray | None:
    """What a BatchNormalization with constant parameters maps a zero channel to, per channel
    (bias - scale * mean / sqrt(var + eps), as onnxruntime computes it); None for any other node."""
    if node.op != "BatchNormalization" or len(node.inputs) < 5 or not all(
            isinstance(t, gs.Constant) for t in node.inputs[1:5]):
        return None
    scale, bias, mean, var = (np.asarray(t.values, dtype=np.float64) for t in node.inputs[1:5])
    return bias - scale * mean / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))


def _channel_inputs(node: gs.Node) -> list[gs.Variable]:
    """The variable inputs of an elementwise node that carry the output's channel axis."""
    if node.op in ("BatchNormalization", "Pad", "Unsqueeze", "Squeeze", "Flatten", "ReduceMean", "ReduceMax"):
        return [node.inputs[0]]
    out_c = channel_count(node.outputs[0])
    return [t for t in node.inputs if isinstance(t, gs.Variable) and channel_count(t) == out_c]


def _constant_axes(node: gs.Node) -> list[int] | None:
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1 and isinstance(node.inputs[1], gs.Constant):
        axes = node.inputs[1].values.tolist()
    return None if axes is None else list(np.atleast_1d(axes))


def _keeps_channel_axis(node: gs.Node) -> bool:
    """Whether an ELEMENTWISE node keeps axis 1 as the channel axis (checked from shapes and axes)."""
    out = node.outputs[0]
    inp = node.inputs[0]
    c_in, c_out = channel_count(inp), channel_count(out)
    if c_in is None or c_out is None:
        return False
    if node.op == "Flatten":
        rest = inp.shape[2:]
        return node.attrs.get("axis", 1) == 1 and all(isinstance(d, (int, np.integer)) for d in rest) and (
            c_out == c_in * int(np.prod(rest, dtype=np.int64))
        )
    if c_in != c_out:
        return False
    if node.op in ("Unsqueeze", "Squeeze", "ReduceMean", "ReduceMax"):
        axes = _constant_axes(node)
        if axes is None:
            return False
        rank = len(out.shape) if node.op == "Unsqueeze" else len(inp.shape)
        return not {a % rank for a in axes} & {0, 1}
    if node.op == "Pad":
        pads = node.inputs[1].values if len(node.inputs) > 1 and isinstance(node.inputs[1], gs.Constant) else None
        if pads is None:
            return False
        return bool((np.asarray(pads).reshape(2, len(inp.shape))[:, :2] == 0).all())
    return True


def _producer_reads(node: gs.Node) -> gs.Variable | None:
    """The data input of a conv/linear node whose weight is a constant we can slice, else None."""
    if len(node.inputs) < 2 or not isinstance(node.inputs[1], gs.Constant):
        return None
    if node.op == "Conv" and node.attrs.get("group", 1) != 1:
        return None
    if node.op == "Gemm" and node.attrs.get("transA", 0) != 0:
        return None
    if node.op == "MatMul" and (np.asarray(node.inputs[1].values).ndim != 2 or len(node.inputs[0].shape or ()) != 2):
        return None
    data = node.inputs[0]
    return data if isinstance(data, gs.Variable) and channel_count(data) is not None else None


def group_width(node: gs.Node) -> int | None:
    """Channels per group of a channel-preserving grouped Conv (C_in = C_out, group > 1, constant
    weight), else None. Output channel c reads only the input channels of its own group, so input
    and output share one channel space, as through ReLU; a depthwise conv has width 1."""
    if node.op != "Conv" or node.attrs.get("group", 1) == 1 or len(node.inputs) < 2:
        return None
    w = node.inputs[1]
    c_in, c_out = channel_count(node.inputs[0]), channel_count(node.outputs[0])
    groups = int(node.attrs["group"])
    if not (isinstance(w, gs.Constant) and c_in is not None and c_in == c_out and c_out % groups == 0):
        return None
    width = c_out // groups
    return width if np.asarray(w.values).shape[:2] == (c_out, width) else None


def is_depthwise(node: gs.Node) -> bool:
    """A Conv whose every output channel reads only its own input channel (group = C_in = C_out),
    with a constant weight: channel-wise like ReLU, so input and output share one channel space."""
    return group_width(node) == 1


def _is_channel_concat(node: gs.Node) -> bool:
    """A Concat along axis 1 (of feature maps, or of (N, C) gates) whose inputs' channel counts
    are known and add up to its output's."""
    if node.op != "Concat" or len(node.outputs) != 1 or not node.inputs:
        return False
    out = node.outputs[0]
    if out.shape is None or len(out.shape) < 2 or channel_count(out) is None:
        return False
    rank = len(out.shape)
    if node.attrs.get("axis") not in (1, 1 - rank):
        return False
    widths = [channel_count(t) if isinstance(t, gs.Variable) and t.shape is not None and len(t.shape) == rank else None
              for t in node.inputs]
    return None not in widths and sum(widths) == channel_count(out)  # type: ignore[arg-type]


def _kind(node: gs.Node) -> NodeKind:
    if _is_channel_concat(node):
        return NodeKind.CONCAT
    if group_width(node) is not None and len(node.outputs) == 1:
        return NodeKind.JOIN
    if node.op in ELEMENTWISE and len(node.outputs) == 1 and _keeps_channel_axis(node):
        return NodeKind.JOIN
    if node.op in PRODUCERS and len(node.outputs) == 1 and _producer_reads(node) is not None:
        return NodeKind.PRODUCER
    return NodeKind.OPAQUE


def find_spaces(graph: gs.Graph) -> ChannelSpaces:
    """Phase 1: classify every node and group channel tensors into spaces (union-find)."""
    uf: UnionFind[str] = UnionFind()
    repeat: dict[str, int] = {}
    tensors: dict[str, gs.Variable] = {}
    pinned: set[str] = set()
    kinds: dict[int, NodeKind] = {}

    def note(t: gs.Tensor) -> None:
        if isinstance(t, gs.Variable) and channel_count(t) is not None:
            tensors[t.name] = t
            uf.find(t.name)

    for t in [*graph.inputs, *graph.outputs]:
        note(t)
        pinned.add(t.name)
    for node in graph.nodes:
        for t in [*node.inputs, *node.outputs]:
            note(t)
        kind = kinds[id(node)] = _kind(node)
        if kind is NodeKind.JOIN:
            out = node.outputs[0]
            for t in _channel_inputs(node):
                uf.union(t.name, out.name)
            if node.op == "Flatten":
                repeat[out.name] = channel_count(out) // channel_count(node.inputs[0])  # type: ignore[operator]
        elif kind is NodeKind.OPAQUE:
            pinned.update(t.name for t in [*node.inputs, *node.outputs] if t.name in tensors)

    roots: dict[str, int] = {}
    space_of: dict[str, int] = {}
    width: dict[int, int] = {}
    for name, t in sorted(tensors.items()):
        sid = roots.setdefault(uf.find(name), len(roots))
        space_of[name] = sid
        width.setdefault(sid, channel_count(t) // repeat.get(name, 1))  # type: ignore[operator]
    spaces = ChannelSpaces(tensors, space_of, repeat, width, kinds, pinned)
    _find_parts(graph, spaces)
    return spaces


def _find_parts(graph: gs.Graph, spaces: ChannelSpaces) -> None:
    """Record each channel Concat's parts. Its space may have other sources only if they are
    Concats of the same parts (a pass-through conv's concatenated gates, multiplied into the
    concatenated maps); a Concat whose space has any other (a residual Add of it and a conv's
    output), or that reads a Flatten's columns, cannot be split into parts: it becomes opaque, and
    every channel on both of its sides is kept."""
    sources: dict[int, list[gs.Tensor]] = {}  # space id -> tensors no channel-preserving node produces
    for name, t in spaces.tensors.items():
        producer = t.inputs[0] if t.inputs else None
        if producer is None or spaces.kinds[id(producer)] is not NodeKind.JOIN:
            sources.setdefault(spaces.space_of[name], []).append(t)
    concats = [n for n in graph.nodes if spaces.kinds[id(n)] is NodeKind.CONCAT]
    parts_of = {id(n.outputs[0]): _parts(n, spaces) for n in concats}
    for node in concats:
        out = node.outputs[0]
        sid = spaces.space_of[out.name]
        parts = parts_of[id(out)]
        if parts is not None and all(parts_of.get(id(t)) == parts for t in sources[sid]) and all(
                p.space != sid for p in parts):
            spaces.parts[sid] = parts
        else:
            spaces.kinds[id(node)] = NodeKind.OPAQUE
            spaces.pinned_tensors.update(t.name for t in [*node.inputs, out])


def _parts(node: gs.Node, spaces: ChannelSpaces) -> tuple[Part, ...] | None:
    """A channel Concat's inputs as parts of its output's space (None if one is a Flatten's columns)."""
    parts, offset = [], 0
    for t in [*node.inputs, node.outputs[0]]:
        if spaces.repeat.get(t.name, 1) != 1:
            return None
    for t in node.inputs:
        parts.append(Part(spaces.space_of[t.name], offset, spaces.channels(t)))
        offset += spaces.channels(t)
    return tuple(parts)


def forward_live(graph: gs.Graph, spaces: ChannelSpaces) -> dict[str, np.ndarray]:
    """Phase 2: per channel tensor, the channels that can be nonzero."""
    live: dict[str, np.ndarray] = {t.name: np.ones(spaces.channels(t), bool) for t in graph.inputs
                                   if t.name in spaces.tensors}

    def live_of(t: gs.Tensor, c: int) -> np.ndarray:
        return live.get(t.name, np.ones(c, bool))

    for node in graph.nodes:
        for out in node.outputs:
            if out.name not in spaces.tensors:
                continue
            c = spaces.channels(out)
            if spaces.kinds[id(node)] is NodeKind.CONCAT:  # each input's channels, end to end
                live[out.name] = np.concatenate([live_of(t, spaces.channels(t)) for t in node.inputs])
                continue
            shift = batchnorm_shift(node) if spaces.kinds[id(node)] is NodeKind.JOIN else None
            if shift is not None:  # BN(0) is its shift: a dead channel stays dead where that is 0
                live[out.name] = live_of(node.inputs[0], c) | (shift != 0)
                continue
            if spaces.kinds[id(node)] is not NodeKind.JOIN or not (
                    node.op in ZERO_PRESERVING | {"Mul", "Add", "Sub", "Div", "Pad"} or _clip_keeps_zero(node)):
                live[out.name] = np.ones(c, bool)
                continue
            ins = _channel_inputs(node)
            rank = len(out.shape)
            if node.op == "Mul":  # zero if any factor is zero
                acc = np.ones(c, bool)
                for t in node.inputs:
                    if t.name in spaces.tensors and t in ins:
                        acc &= live_of(t, c)
                    elif isinstance(t, gs.Constant):
                        vals = constant_channel_values(t, rank, c)
                        acc &= np.ones(c, bool) if vals is None else (vals != 0).any(1)
                live[out.name] = acc
            elif node.op in ("Add", "Sub"):  # zero only if every term is zero
                acc = np.zeros(c, bool)
                for t in node.inputs:
                    if t.name in spaces.tensors and t in ins:
                        acc |= live_of(t, c)
                    elif isinstance(t, gs.Constant):
                        vals = constant_channel_values(t, rank, c)
                        acc |= (np.asarray(t.values) != 0).any() if vals is None else (vals != 0).any(1)
                    else:
                        acc |= True
                live[out.name] = acc
            elif node.op == "Pad":
                value = node.inputs[2].values if len(node.inputs) > 2 and isinstance(node.inputs[2], gs.Constant) else 0
                zero_pad = node.attrs.get("mode", "constant") == "constant" and not np.any(value)
                live[out.name] = live_of(ins[0], c).copy() if zero_pad else np.ones(c, bool)
            else:  # Div, Clip and the zero-preserving unary ops follow their first channel input
                live[out.name] = live_of(ins[0], c).copy() if ins else np.ones(c, bool)
    return live


def backward_needed(graph: gs.Graph, spaces: ChannelSpaces, live: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Phase 3: per channel tensor, the channels that can affect an output."""
    needed = {n: np.zeros(spaces.channels(t), bool) for n, t in spaces.tensors.items()}
    for n in spaces.pinned_tensors:
        if n in needed:
            needed[n][:] = True
    for node in reversed(graph.nodes):
        if spaces.kinds[id(node)] is NodeKind.CONCAT:  # each input needs its own stretch of the output
            need_out, offset = needed[node.outputs[0].name], 0
            for t in node.inputs:
                needed[t.name] |= need_out[offset:offset + len(needed[t.name])]
                offset += len(needed[t.name])
            continue
        if spaces.kinds[id(node)] is not NodeKind.JOIN:
            for t in node.inputs:
                if t.name in needed:
                    needed[t.name][:] = True
            continue
        out = node.outputs[0]
        need_out = needed.get(out.name)
        if need_out is None:
            continue
        ins = _channel_inputs(node)
        width = group_width(node)
        if width is not None:  # a grouped conv: every input channel of a group feeds each output of it
            ins = [node.inputs[0]]
            need_out = np.repeat(need_out.reshape(-1, width).any(1), width)
        for t in ins:
            req = need_out.copy()
            if node.op == "Mul":  # a channel multiplied by a dead channel or a zero is not needed
                for other in node.inputs:
                    if other is t:
                        continue
                    if other.name in live and other in ins:
                        req &= live[other.name]
                    elif isinstance(other, gs.Constant):
                        vals = constant_channel_values(other, len(out.shape), len(req))
                        if vals is not None:
                            req &= (vals != 0).any(1)
            needed[t.name] |= req
    return needed


@dataclass(frozen=True)
class GroupedSpace:
    """A channel space that a grouped conv runs in: its group width and the grouped convs' inputs."""

    width: int
    inputs: tuple[str, ...]


def grouped_spaces(graph: gs.Graph, spaces: ChannelSpaces) -> tuple[dict[int, GroupedSpace], set[int]]:
    """The spaces grouped (not depthwise) convs run in, and those to keep whole: where grouped convs
    of different group widths share a space (no one set of equal groups fits both), or where one
    runs in a Concat's composite space (its kept channels are its parts', laid end to end)."""
    found: dict[int, GroupedSpace] = {}
    clash: set[int] = set()
    for node in graph.nodes:
        width = group_width(node)
        if width is None or width == 1 or spaces.kinds[id(node)] is not NodeKind.JOIN:
            continue
        sid = spaces.space_of[node.outputs[0].name]
        seen = found.get(sid)
        if sid in spaces.parts or (seen is not None and seen.width != width):
            clash.add(sid)
            continue
        found[sid] = GroupedSpace(width, (*(seen.inputs if seen else ()), node.inputs[0].name))
    return found, clash


def _equal_groups(idx: np.ndarray, space: GroupedSpace, live: dict[str, np.ndarray], total: int) -> np.ndarray:
    """`idx` widened so that a grouped conv can run on it: every group holding a kept channel keeps
    the live channels of its grouped convs' inputs (each output of the group reads them all, so
    every kept output equals the original), then as many channels as the fullest kept group (a
    Conv's groups are all one width), topped up with the group's first dropped channels."""
    keep = np.zeros(total, bool)
    keep[idx] = True
    groups = keep.reshape(-1, space.width)
    used = groups.any(1)
    for name in space.inputs:
        groups |= live.get(name, np.ones(total, bool)).reshape(-1, space.width) & used[:, None]
    most = int(groups.sum(1).max())
    for g in np.flatnonzero(used):
        short = most - int(groups[g].sum())
        groups[g, np.flatnonzero(~groups[g])[:short]] = True
    return np.flatnonzero(groups.reshape(-1))


def kept_channels(spaces: ChannelSpaces, live: dict[str, np.ndarray], needed: dict[str, np.ndarray],
                  align: int = 1, depthwise: frozenset[int] = frozenset(),
                  grouped: dict[int, GroupedSpace] | None = None, unaligned: frozenset[int] = frozenset()) -> ChannelPlan:
    """Phase 4: each space keeps the union over its tensors of live-and-needed channels.

    A composite space (a channel Concat's) keeps its parts' kept channels, offset; what its own
    tensors need (a BN after the Concat may make a dead channel live) is added to the part it
    comes from first, so every tensor of it still equals the original on every kept channel.

    With `align` N > 1, a feature-map space that keeps at least N channels keeps a multiple of N:
    the first channels it would drop fill the gap. A module's selection is aligned already, but
    folded gates turn a kept kernel whose mean gate is 0 into a dead channel, and odd widths miss
    onnxruntime's blocked (NCHWc) conv kernels: a trained MobileNetV2 module's 23-channel
    depthwise conv took 1.18 ms where the plain model's 48-channel one took 0.59 ms (batch 32).
    A filler channel cannot affect an output, so the module's answers stay the same. Narrower
    spaces stay as they are, as the selection leaves them (see `module_kernels`), except those
    a depthwise conv runs in (`depthwise`): they keep N channels (or all, if fewer). A trained
    MobileNetV2 module's stem kept 6 channels, and its depthwise conv ran unblocked: 0.42-0.46 ms
    of a 2.9-3.2 ms module at batch 32 (one thread); padded to 8, the node vanished from the
    profile and the module ran 1.07-1.09x faster, at 0.8% more of the plain model's FLOPs.
    A space a grouped conv runs in (`grouped`) keeps whole groups of equal width (`_equal_groups`).
    The `unaligned` spaces keep their exact width: the selection's pad limit left them unrounded.
    """
    grouped = grouped or {}
    pinned = {spaces.space_of[n] for n in spaces.pinned_tensors if n in spaces.space_of}
    union = _needed_union(spaces, live, needed)
    for sid in pinned:
        union[sid] = np.ones(spaces.width[sid], bool)
    _push_into_parts(spaces.parts, union)
    feature_maps = {spaces.space_of[n] for n, t in spaces.tensors.items() if t.shape is not None and len(t.shape) == 4}
    kept: dict[int, np.ndarray] = {}
    for sid, m in union.items():
        if sid in spaces.parts:
            continue
        if sid in pinned:
            kept[sid] = np.arange(spaces.width[sid])
            continue
        idx = np.flatnonzero(m)
        short = (-len(idx)) % align
        if sid in unaligned:
            short = 0
        elif sid in depthwise and len(idx) < align:
            short = min(align, spaces.width[sid]) - len(idx)
        elif len(idx) < align or len(idx) + short > spaces.width[sid]:
            short = 0
        if sid in feature_maps and short:
            idx = np.sort(np.concatenate([idx, np.flatnonzero(~m)[:short]]))
        if sid in grouped and len(idx):
            idx = _equal_groups(idx, grouped[sid], live, spaces.width[sid])
        kept[sid] = idx if len(idx) else np.array([0])  # a space never vanishes: keep one (zero) channel
    for sid, parts in sorted(spaces.parts.items(), key=lambda item: _depth(spaces.parts, item[0])):
        kept[sid] = np.concatenate([kept[p.space] + p.offset for p in parts])
    return ChannelPlan(space_of=spaces.space_of, repeat=spaces.repeat, kept=kept, width=spaces.width, pinned=pinned,
                       parts=dict(spaces.parts))


def _needed_union(spaces: ChannelSpaces, live: dict[str, np.ndarray],
                  needed: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """Per space, the union over its tensors of live-and-needed channels."""
    union: dict[int, np.ndarray] = {}
    for name in spaces.tensors:
        sid = spaces.space_of[name]
        m = live.get(name, np.ones(spaces.width[sid], bool)) & needed[name]
        union[sid] = union[sid] | m if sid in union else m
    return union


def _depth(parts: dict[int, tuple[Part, ...]], sid: int) -> int:
    """How deeply composite spaces nest inside `sid` (0: its parts are plain spaces)."""
    return 1 + max((_depth(parts, p.space) for p in parts[sid] if p.space in parts), default=-1)


def _push_into_parts(parts: dict[int, tuple[Part, ...]], union: dict[int, np.ndarray]) -> None:
    """Every channel a composite space needs becomes needed in the part it comes from (outermost
    composites first, so a nested Concat passes on what its consumers need too)."""
    for sid in sorted(parts, key=lambda s: -_depth(parts, s)):
        for p in parts[sid]:
            union[p.space] = union[p.space] | union[sid][p.offset:p.offset + p.width]


def plan_channels(graph: gs.Graph, align: int = 1, unaligned: Collection[str] = ()) -> ChannelPlan:
    """Run the analysis over a shape-inferred graph (see the module docstring for what it
    guarantees; `align` as in `kept_channels`, which leaves the spaces of the `unaligned` tensors
    at their exact width)."""
    spaces = find_spaces(graph)
    grouped, clash = grouped_spaces(graph, spaces)
    spaces.pinned_tensors.update(n for n, sid in spaces.space_of.items() if sid in clash)
    live = forward_live(graph, spaces)
    needed = backward_needed(graph, spaces, live)
    depthwise = frozenset(spaces.space_of[n.outputs[0].name] for n in graph.nodes
                          if spaces.kinds[id(n)] is NodeKind.JOIN and is_depthwise(n))
    exact = frozenset(spaces.space_of[name] for name in unaligned if name in spaces.space_of)
    return kept_channels(spaces, live, needed, align, depthwise, grouped, exact)
