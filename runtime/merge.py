"""Merging modules into one ONNX graph: shared input, logits concatenated in class order."""

from __future__ import annotations

from dataclasses import replace

import onnx
from onnx import TensorProto, helper

from mwt.core.errors import MwtError
from mwt.core.metadata import INPUT, LABEL, LOGITS, PROBABILITIES, ModuleMetadata, Precision
from runtime.module_file import ModuleFile


def logits_only(module: ModuleFile) -> onnx.ModelProto:
    """The part of a module that computes `logits` (a composed file's extra outputs are dropped)."""
    model = module.model
    if [o.name for o in model.graph.output] == [LOGITS]:
        return model
    return onnx.utils.Extractor(model).extract_model([module.input.name], [LOGITS])


def merge_modules(modules: list[ModuleFile]) -> onnx.ModelProto:
    """One graph computing every module from one input.

    Outputs: `logits` (N, classes) = the modules' logits concatenated in the order given (each
    exactly as the module computes it), `probabilities` = softmax over them, and `label` (N,)
    int64 = the index of the predicted class. The file carries mwt metadata, so it can itself
    be composed, predicted with or served.
    """
    opsets: dict[str, int] = {}
    for m in modules:  # quantized modules may import an extra domain; one version per domain
        for o in m.model.opset_import:
            if opsets.setdefault(o.domain, o.version) != o.version:
                raise MwtError(f"the modules use different versions ({opsets[o.domain]}, {o.version}) of the ONNX "
                               f"opset '{o.domain or 'ai.onnx'}'; export them with the same mwt version")
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    part_logits: list[str] = []
    for i, module in enumerate(modules):
        prefixed = onnx.compose.add_prefix(logits_only(module), f"m{i}/")
        own_input = f"m{i}/{module.input.name}"
        for node in prefixed.graph.node:
            node.input[:] = [INPUT if name == own_input else name for name in node.input]
            nodes.append(node)
        initializers.extend(prefixed.graph.initializer)
        part_logits.append(f"m{i}/{LOGITS}")
    nodes.append(helper.make_node("Concat", part_logits, [LOGITS], name="concat_logits", axis=1))
    nodes.append(helper.make_node("Softmax", [LOGITS], [PROBABILITIES], name="softmax", axis=1))
    nodes.append(helper.make_node("ArgMax", [LOGITS], [LABEL], name="argmax", axis=1, keepdims=0))
    first = modules[0]
    classes = [c for m in modules for c in m.classes]
    graph = helper.make_graph(
        nodes, "mwt_composed",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", *first.input.shape])],
        [helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["batch", len(classes)]),
         helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, ["batch", len(classes)]),
         helper.make_tensor_value_info(LABEL, TensorProto.INT64, ["batch"])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
                              producer_name="mwt-compose")
    model.ir_version = max(m.model.ir_version for m in modules)
    sources = sorted({m.source for m in modules})
    precisions = {m.meta.precision for m in modules}
    ModuleMetadata(
        classes=tuple(classes),
        input=replace(first.input, name=INPUT),
        source_sha256=sources[0] if len(sources) == 1 else "mixed:" + ",".join(sources),
        module_flops=sum(m.flops for m in modules),
        full_flops=first.meta.full_flops,
        plain_flops=first.meta.plain_flops,
        module_params=sum(m.meta.module_params for m in modules),
        full_params=first.meta.full_params,
        precision=precisions.pop() if len(precisions) == 1 else Precision.mixed,
        # a composed file's own parts, not the file as one part (its per-module fields are empty)
        parts=tuple(part for m in modules for part in (m.meta.parts or (
            {"classes": m.classes, "krr": m.meta.krr, "flops": m.flops, "source": m.source,
             "gates": m.meta.gates.value if m.meta.gates else None, "align": m.meta.align,
             "precision": m.meta.precision.value},))),
    ).write(model)
    onnx.checker.check_model(model)
    return model
