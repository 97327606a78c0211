"""Rewrite pass: physically slice every initializer to the channels the plan keeps.

One small function per op type, looked up in `SLICERS`; ops not listed hold no per-channel
constants and need no rewrite.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_graphsurgeon as gs

from exporter.channels import ChannelPlan, constant_channel_values, group_width
from exporter.errors import ExportError
from exporter.passes import end_pass


def _replace_constant(node: gs.Node, index: int, values: np.ndarray) -> None:
    old = node.inputs[index]
    # A constant read by several nodes gets a copy per node, so slicing one never changes another.
    name = old.name if len(old.outputs) <= 1 else f"{old.name}:{node.name}"
    node.inputs[index] = gs.Constant(name, np.ascontiguousarray(values.astype(np.asarray(old.values).dtype)))


def _kept_or_all(indices: np.ndarray | None, n: int) -> np.ndarray:
    return np.arange(n) if indices is None else indices


def slice_conv(node: gs.Node, plan: ChannelPlan) -> None:
    """Conv weight (out, in, kh, kw): rows to the output's kept channels, columns to the input's.
    A channel-preserving grouped conv (a depthwise one has one channel per group) keeps its kept
    groups, each with the same kept channels on both sides (the plan keeps whole groups of equal
    width, see `channels._equal_groups`)."""
    width = group_width(node)
    if node.attrs.get("group", 1) != 1 and width is None:
        return  # any other grouped conv is opaque to the plan: every channel it reads or writes is kept
    w = np.asarray(node.inputs[1].values)
    rows = _kept_or_all(plan.kept_of(node.outputs[0]), w.shape[0])
    if width is not None:  # input and output share a space: the same channels on both sides
        kept_groups, counts = np.unique(rows // width, return_counts=True)
        if np.any(counts != counts[0]):
            raise ExportError(f"grouped conv {node.name}: the plan keeps groups of unequal widths")
        per_group = int(counts[0])
        columns = (rows % width).reshape(len(kept_groups), per_group)  # within each group, its kept channels
        picked = w[rows].reshape(len(kept_groups), per_group, width, *w.shape[2:])
        picked = np.take_along_axis(picked, columns[:, None, :, None, None], axis=2)
        _replace_constant(node, 1, picked.reshape(len(rows), per_group, *w.shape[2:]))
        node.attrs["group"] = len(kept_groups)
    else:
        cols = _kept_or_all(plan.kept_of(node.inputs[0]), w.shape[1])
        _replace_constant(node, 1, w[rows][:, cols])
    if len(node.inputs) > 2 and isinstance(node.inputs[2], gs.Constant):
        _replace_constant(node, 2, np.asarray(node.inputs[2].values)[rows])


def slice_dense(node: gs.Node, plan: ChannelPlan) -> None:
    """Gemm (transA=0) or MatMul with a constant weight: the output axis to the output's kept
    features, the input axis to the input's (expanded per channel after a Flatten); Gemm's bias too."""
    w = np.asarray(node.inputs[1].values)
    out_axis = 0 if node.op == "Gemm" and node.attrs.get("transB", 0) else 1
    rows = _kept_or_all(plan.kept_of(node.outputs[0]), w.shape[out_axis])
    cols = _kept_or_all(plan.columns_of(node.inputs[0]), w.shape[1 - out_axis])
    _replace_constant(node, 1, np.take(np.take(w, rows, axis=out_axis), cols, axis=1 - out_axis))
    if node.op == "Gemm" and len(node.inputs) > 2 and isinstance(node.inputs[2], gs.Constant):
        b = np.asarray(node.inputs[2].values)
        if b.ndim >= 1 and b.shape[-1] > 1:
            _replace_constant(node, 2, b[..., rows])


def slice_batchnorm(node: gs.Node, plan: ChannelPlan) -> None:
    """BatchNormalization: scale, bias, mean and variance to the kept channels."""
    kept = plan.kept_of(node.outputs[0])
    if kept is None:
        return
    for i in range(1, 5):
        _replace_constant(node, i, np.asarray(node.inputs[i].values)[kept])


def slice_broadcast_constants(node: gs.Node, plan: ChannelPlan) -> None:
    """Elementwise ops: constants that vary along the channel axis (masks, folded gates) are sliced."""
    out = node.outputs[0]
    kept = plan.kept_of(out)
    if kept is None or out.shape is None:
        return
    rank = len(out.shape)
    width = plan.width[plan.space_of[out.name]]
    for i, t in enumerate(node.inputs):
        if not isinstance(t, gs.Constant):
            continue
        values = np.asarray(t.values)
        if constant_channel_values(t, rank, width * plan.repeat.get(out.name, 1)) is None:
            continue
        axis = 1 - (rank - values.ndim)
        _replace_constant(node, i, np.take(values, plan.columns_of(out), axis=axis))


SLICERS: dict[str, Callable[[gs.Node, ChannelPlan], None]] = {
    "Conv": slice_conv,
    "Gemm": slice_dense,
    "MatMul": slice_dense,
    "BatchNormalization": slice_batchnorm,
    "Mul": slice_broadcast_constants,
    "Add": slice_broadcast_constants,
    "Sub": slice_broadcast_constants,
    "Div": slice_broadcast_constants,
}


def apply_plan(graph: gs.Graph, plan: ChannelPlan) -> int:
    """Slice every node's constants as `plan` says, then drop all stale intermediate shapes
    (`finalize` infers them afresh). Returns the number of nodes visited by a slicer."""
    sliced = 0
    for node in graph.nodes:
        slicer = SLICERS.get(node.op)
        if slicer is not None:
            slicer(node, plan)
            sliced += 1
    for t in graph.tensors().values():
        if isinstance(t, gs.Variable) and t not in graph.inputs:
            t.shape = None
    return end_pass(graph, sliced)
