"""FLOPs and parameter counts of an ONNX graph (per sample), from its inferred shapes. Needs only onnx."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper


@dataclass(frozen=True)
class Cost:
    """Multiply-accumulates of convs and dense layers (FLOPs = 2 * MACs) and stored parameters.

    `by_kind` splits the MACs by kind of layer (conv, depthwise conv, grouped conv, dense), so a
    report can say where a module's FLOPs go."""

    macs: int
    params: int
    by_kind: tuple[tuple[str, int], ...] = ()

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def shares(self) -> str:
        """'conv 91.2%, depthwise conv 8.1%, dense 0.7%' (largest first); empty without MACs."""
        if not self.macs:
            return ""
        return ", ".join(f"{kind} {100 * m / self.macs:.1f}%" for kind, m in self.by_kind)


def _conv_kind(node: onnx.NodeProto, weight: list[int]) -> str:
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    if group == 1:
        return "conv"
    return "depthwise conv" if weight[1] == 1 and weight[0] == group else "grouped conv"


def _dims(value: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") else 1 for d in value.type.tensor_type.shape.dim]


def graph_cost(model: onnx.ModelProto) -> Cost:
    """Count per-sample MACs of Conv, Gemm and MatMul nodes and the number of stored parameters."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: _dims(v) for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    weights = {t.name: list(t.dims) for t in inferred.graph.initializer}
    for node in inferred.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    weights[node.output[0]] = list(attr.t.dims)
    by_kind: dict[str, int] = {}
    for node in inferred.graph.node:
        if node.op_type == "Conv" and node.input[1] in weights and node.output[0] in shapes:
            out = shapes[node.output[0]]
            w = weights[node.input[1]]  # (out, in / group, kh, kw)
            kind = _conv_kind(node, w)
            by_kind[kind] = by_kind.get(kind, 0) + int(np.prod(out[1:], dtype=np.int64)) * int(
                np.prod(w[1:], dtype=np.int64))
        elif node.op_type in ("Gemm", "MatMul") and node.input[1] in weights:
            by_kind["dense"] = by_kind.get("dense", 0) + int(np.prod(weights[node.input[1]], dtype=np.int64))
    params = sum(int(np.prod(t.dims, dtype=np.int64)) for t in inferred.graph.initializer
                 if numpy_helper.to_array(t).dtype.kind == "f")
    kinds = tuple(sorted(by_kind.items(), key=lambda kv: -kv[1]))
    return Cost(macs=sum(by_kind.values()), params=params, by_kind=kinds)
