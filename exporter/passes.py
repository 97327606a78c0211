"""The compiler's rewriting passes over an onnx-graphsurgeon graph, in the order the compiler runs them.

The contract every pass keeps: it is a function of the graph (and its parameters) that edits
the graph in place, gives every tensor it creates a dtype and, where known, a shape, ends with
`end_pass` (dead-node cleanup and a topological sort), and returns how many edits it made.
Passes raise ExportError, never another exception, for a graph they cannot handle.
`finalize` then re-infers every shape and runs the ONNX checker once, at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from exporter.errors import ExportError
from exporter.torch_export import GATE_PREFIX
from mwt.core.metadata import LOGITS

T = TypeVar("T")
ORT_DEFAULT_SEVERITY = 2  # onnxruntime's own default: warnings and worse


@contextlib.contextmanager
def _quiet_onnxruntime() -> Iterator[None]:
    """Within the block, onnxruntime logs only errors: graphsurgeon's constant folding runs it,
    and its optimizer's notices about the half-built graph are noise. onnxruntime has no getter
    for the level, so it goes back to onnxruntime's default after, not to a level set elsewhere."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    try:
        yield
    finally:
        ort.set_default_logger_severity(ORT_DEFAULT_SEVERITY)


def fold_constants(graph: gs.Graph) -> gs.Graph:
    """graphsurgeon's constant folding (values computed by onnxruntime), without its log noise."""
    with _quiet_onnxruntime():
        return graph.fold_constants()


def end_pass(graph: gs.Graph, edits: int) -> int:
    """How every pass ends: drop dead nodes and tensors, sort topologically, report the edit count."""
    graph.cleanup().toposort()
    return edits


def import_graph(model: onnx.ModelProto) -> gs.Graph:
    """A graphsurgeon graph with shapes inferred and constant-valued nodes turned into constants."""
    # Folding first turns computed constants (F.pad's pads, for one) into values, so that shape
    # inference can then give every feature map its spatial size.
    graph = gs.import_onnx(model)
    fold_constants(graph).cleanup()
    model = gs.export_onnx(graph)
    del model.graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    graph = gs.import_onnx(model)
    # Constant nodes, and Identity nodes the torch exporter uses to share equal initializers,
    # become plain constants of their own, so each layer's weights can be sliced independently.
    for node in graph.nodes:
        if len(node.outputs) != 1:
            continue
        if node.op == "Constant":
            values = np.asarray(node.attrs["value"].values)
        elif node.op == "Identity" and isinstance(node.inputs[0], gs.Constant):
            values = np.array(node.inputs[0].values)
        else:
            continue
        out = node.outputs[0]
        if out in graph.outputs:
            continue
        const = gs.Constant(out.name, values)
        for consumer in list(out.outputs):
            consumer.inputs[consumer.inputs.index(out)] = const
        node.outputs.clear()
    graph.cleanup()
    return graph


def gate_tensors(graph: gs.Graph) -> dict[str, gs.Variable]:
    """Layer name -> the gate tensor the torch export named `gate:<layer>`."""
    return {t.name[len(GATE_PREFIX):]: t for t in graph.outputs if t.name.startswith(GATE_PREFIX)}


def gated_feature_maps(graph: gs.Graph) -> dict[str, str]:
    """Layer name -> the tensor its gate multiplies (the gated layer's output feature map): the
    first node downstream of the gate that also reads a tensor not computed from the gate.
    Read before the gates are masked or frozen; the tensor keeps its name through both."""
    maps: dict[str, str] = {}
    for layer, gate in gate_tensors(graph).items():
        derived, frontier = {gate.name}, [gate]
        while frontier and layer not in maps:
            tensor = frontier.pop(0)
            for node in tensor.outputs:
                if any(t.name not in derived and not isinstance(t, gs.Constant) for t in node.inputs):
                    maps[layer] = node.outputs[0].name
                    break
                for t in node.outputs:
                    derived.add(t.name)
                    frontier.append(t)
    return maps


def _rewire(graph: gs.Graph, old: gs.Tensor, new: gs.Tensor) -> None:
    """Every consumer of `old` reads `new` instead."""
    for consumer in list(old.outputs):
        for i, t in enumerate(consumer.inputs):
            if t is old:
                consumer.inputs[i] = new


def _drop_gate_outputs(graph: gs.Graph) -> None:
    graph.outputs = [t for t in graph.outputs if not t.name.startswith(GATE_PREFIX)]


def mask_gates(graph: gs.Graph, retained: dict[str, np.ndarray]) -> int:
    """Dynamic gates: multiply each layer's gate by its 0/1 retained mask.

    After this pass the graph computes exactly the PyTorch simulation of the module (unretained
    kernels' outputs forced to zero); the pruning pass then removes what the masks make dead.
    """
    gates = gate_tensors(graph)
    _check_layers(gates, retained)
    for layer, gate in gates.items():
        mask = gs.Constant(f"{layer}.mask", retained[layer].astype(np.float32)[None, :])
        masked = gs.Variable(f"{layer}.gate.masked", dtype=np.float32, shape=gate.shape)
        _rewire(graph, gate, masked)
        graph.nodes.append(gs.Node("Mul", name=f"{layer}.gate.mask", inputs=[gate, mask], outputs=[masked]))
    _drop_gate_outputs(graph)
    return end_pass(graph, len(gates))


def freeze_gates(graph: gs.Graph, values: dict[str, np.ndarray]) -> int:
    """Folded gates: each gate becomes a per-kernel constant (zero for unretained kernels).

    The mask generators become dead code; `fold_channel_scales` later moves the constants into
    the conv weights.
    """
    gates = gate_tensors(graph)
    _check_layers(gates, values)
    for layer, gate in gates.items():
        _rewire(graph, gate, gs.Constant(f"{layer}.gate.frozen", values[layer].astype(np.float32)[None, :]))
    _drop_gate_outputs(graph)
    graph.cleanup()
    fold_constants(graph)
    return end_pass(graph, len(gates))


def _check_layers(gates: dict[str, gs.Variable], wanted: dict[str, np.ndarray]) -> None:
    if set(gates) != set(wanted):
        missing = sorted(set(wanted) ^ set(gates))
        raise ExportError(f"the exported graph and the checkpoint disagree on gated layers (e.g. {missing[0]})")
    for layer, gate in gates.items():
        if gate.shape is not None and int(gate.shape[-1]) != len(wanted[layer]):
            raise ExportError(f"layer {layer} has {gate.shape[-1]} kernels but the checkpoint lists {len(wanted[layer])}")


def select_classes(graph: gs.Graph, classes: list[int]) -> int:
    """Keep only the logits of `classes`, in that order, by slicing the last layer's rows.

    Falls back to a Gather on the logits when the last layer is not a Gemm with constant weights.
    """
    logits = next((t for t in graph.outputs if t.name == LOGITS), None)
    if logits is None:
        raise ExportError(f"the graph has no '{LOGITS}' output")
    idx = np.asarray(classes, dtype=np.int64)
    if not logits.inputs:
        raise ExportError(f"the graph's '{LOGITS}' output is not computed by any node")
    producer = logits.inputs[0]
    if (producer.op == "Gemm" and isinstance(producer.inputs[1], gs.Constant)
            and len(logits.outputs) == 0):
        w = np.asarray(producer.inputs[1].values)
        trans_b = producer.attrs.get("transB", 0)
        producer.inputs[1] = gs.Constant(producer.inputs[1].name, np.ascontiguousarray(w[idx] if trans_b else w[:, idx]))
        if len(producer.inputs) > 2 and isinstance(producer.inputs[2], gs.Constant):
            b = np.asarray(producer.inputs[2].values)
            if b.ndim >= 1 and b.shape[-1] > 1:
                producer.inputs[2] = gs.Constant(producer.inputs[2].name, np.ascontiguousarray(b[..., idx]))
    else:
        full = gs.Variable(f"{LOGITS}.all", dtype=np.float32, shape=logits.shape)
        producer.outputs[producer.outputs.index(logits)] = full
        graph.nodes.append(gs.Node("Gather", name="select_classes", attrs={"axis": 1},
                                   inputs=[full, gs.Constant("class_indices", idx)], outputs=[logits]))
    logits.shape = [logits.shape[0] if logits.shape else "batch", len(classes)]
    return end_pass(graph, 1)


# Ops f with f(x * g) == f(x) * g for a per-channel scale g >= 0 (bit for bit: scaling by g >= 0
# keeps the order of values, so max and the sign test give the same element).
_COMMUTES_WITH_SCALE = {"Relu", "MaxPool"}
_SHAPE_ONLY = {"Unsqueeze", "Squeeze", "Reshape", "Flatten", "Identity"}


def _is_nonnegative(t: gs.Tensor, depth: int = 0) -> bool:
    if isinstance(t, gs.Constant):
        return bool(np.all(np.asarray(t.values) >= 0))
    if depth > 16 or len(t.inputs) != 1:
        return False
    node = t.inputs[0]
    if node.op == "Relu":
        return True
    if node.op in _SHAPE_ONLY:
        return _is_nonnegative(node.inputs[0], depth + 1)
    if node.op == "Mul":
        return all(_is_nonnegative(i, depth + 1) for i in node.inputs)
    return False


def _channel_scale_operands(node: gs.Node) -> tuple[int, gs.Tensor] | None:
    """(index of the feature-map input, scale) when `node` is Mul(x, g) with g (N, C, 1, 1) >= 0."""
    if node.op != "Mul" or len(node.inputs) != 2:
        return None
    for i, (x, g) in enumerate((node.inputs, node.inputs[::-1])):
        gs_shape = g.shape
        if (not isinstance(g, gs.Constant) and gs_shape is not None and len(gs_shape) == 4
                and list(gs_shape[2:]) == [1, 1] and x.shape is not None and len(x.shape) == 4
                and _is_nonnegative(g)):
            return (0 if i == 0 else 1), g
    return None


def _matches(graph: gs.Graph, match: Callable[[gs.Node], T | None]) -> Iterator[tuple[gs.Node, T]]:
    """(node, what `match` found) for every node it accepts, over a snapshot of the node list
    (the passes that use this edit the graph as they go)."""
    for node in list(graph.nodes):
        found = match(node)
        if found is not None:
            yield node, found


def sink_channel_scales(graph: gs.Graph) -> int:
    """Move each dynamic gate multiply Mul(x, g), g >= 0 per channel, past the Relu and MaxPool
    that follow it: exact, and it lets onnxruntime fuse Conv+Relu and scale the smaller pooled map.
    Needs inferred shapes. Returns the number of moves."""
    moved = 0
    for node, (data_index, _) in _matches(graph, _channel_scale_operands):
        while True:
            out = node.outputs[0]
            consumers = list(out.outputs)
            if out in graph.outputs or len(consumers) != 1 or consumers[0].op not in _COMMUTES_WITH_SCALE:
                break
            after = consumers[0]
            x = node.inputs[data_index]
            result = after.outputs[0]
            unscaled = gs.Variable(f"{result.name}.unscaled", dtype=result.dtype, shape=result.shape)
            after.inputs[0] = x  # x -> after -> Mul -> (after's consumers)
            after.outputs[0] = unscaled
            node.inputs[data_index] = unscaled
            node.outputs[0] = result
            moved += 1
    return end_pass(graph, moved)


def _constant_mul(node: gs.Node) -> tuple[gs.Constant, gs.Variable] | None:
    """(constant, data) when `node` is a Mul of one constant and one computed tensor."""
    if node.op != "Mul" or len(node.inputs) != 2:
        return None
    a, b = node.inputs
    if isinstance(a, gs.Constant) != isinstance(b, gs.Constant):
        return (a, b) if isinstance(a, gs.Constant) else (b, a)
    return None


def _bypass(graph: gs.Graph, node: gs.Node, replacement: gs.Tensor) -> None:
    """Consumers of `node`'s output read `replacement`; the node becomes dead code."""
    _rewire(graph, node.outputs[0], replacement)
    node.outputs.clear()


def remove_identity_muls(graph: gs.Graph) -> int:
    """Bypass every Mul by an all-ones constant (masks that pruning left with nothing to mask)."""
    removed = 0
    for node, (const, data) in _matches(graph, _constant_mul):
        if node.outputs[0] in graph.outputs or not np.all(np.asarray(const.values) == 1):
            continue
        _bypass(graph, node, data)
        removed += 1
    return end_pass(graph, removed)


def fold_channel_scales(graph: gs.Graph) -> int:
    """Fold Mul(Conv(x), per-channel constant) into the conv's weights and bias (folded gates)."""
    folded = 0
    for node, (const, data) in _matches(graph, _constant_mul):
        if len(data.inputs) != 1 or len(data.outputs) != 1:
            continue
        conv = data.inputs[0]
        if conv.op != "Conv" or not isinstance(conv.inputs[1], gs.Constant):
            continue
        scale = np.asarray(const.values, dtype=np.float32)
        w = np.asarray(conv.inputs[1].values)
        if scale.shape != (1, w.shape[0], 1, 1):
            continue
        s = scale.reshape(-1)
        conv.inputs[1] = gs.Constant(conv.inputs[1].name, np.ascontiguousarray(w * s[:, None, None, None]))
        if len(conv.inputs) > 2 and isinstance(conv.inputs[2], gs.Constant):
            conv.inputs[2] = gs.Constant(conv.inputs[2].name, np.ascontiguousarray(np.asarray(conv.inputs[2].values) * s))
        else:
            conv.inputs.append(gs.Constant(f"{conv.name}.bias", np.zeros(w.shape[0], np.float32)))
        _bypass(graph, node, data)
        folded += 1
    return end_pass(graph, folded)


def finalize(graph: gs.Graph, producer: str) -> onnx.ModelProto:
    """Dead-node removal, topological sort, fresh shape inference and the ONNX checker."""
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    model = gs.export_onnx(graph)
    del model.graph.value_info[:]
    for out in model.graph.output:  # output shapes are re-derived from the sliced weights
        dims = out.type.tensor_type.shape.dim
        if len(dims) == 2:
            dims[1].Clear()
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    model.producer_name = producer
    model.producer_version = ""
    onnx.checker.check_model(model, full_check=True)
    return model
