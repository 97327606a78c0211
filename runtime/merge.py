"""Merging modules into one ONNX graph: shared input, logits concatenated in class order."""

from __future__ import annotations

import json

import onnx
from onnx import TensorProto, helper

from mwt import __version__
from runtime.module_file import ModuleFile

INPUT = "input"


def logits_only(model: onnx.ModelProto) -> onnx.ModelProto:
    """The part of a module that computes `logits` (a composed file's extra outputs are dropped)."""
    if [o.name for o in model.graph.output] == ["logits"]:
        return model
    return onnx.utils.Extractor(model).extract_model([model.graph.input[0].name], ["logits"])


def merge_modules(modules: list[ModuleFile]) -> onnx.ModelProto:
    """One graph computing every module from one input.

    Outputs: `logits` (N, classes) = the modules' logits concatenated in the order given (each
    exactly as the module computes it), `probabilities` = softmax over them, and `label` (N,)
    int64 = the index of the predicted class. The file carries mwt metadata, so it can itself
    be composed, predicted with or served.
    """
    opsets = {tuple((o.domain, o.version) for o in m.model.opset_import) for m in modules}
    if len(opsets) > 1:
        from mwt.errors import MwtError

        raise MwtError("the modules use different ONNX opsets; export them with the same mwt version")
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    part_logits: list[str] = []
    for i, module in enumerate(modules):
        prefixed = onnx.compose.add_prefix(logits_only(module.model), f"m{i}/")
        own_input = prefixed.graph.input[0].name
        for node in prefixed.graph.node:
            node.input[:] = [INPUT if name == own_input else name for name in node.input]
            nodes.append(node)
        initializers.extend(prefixed.graph.initializer)
        part_logits.append(prefixed.graph.output[0].name)
    nodes.append(helper.make_node("Concat", part_logits, ["logits"], name="concat_logits", axis=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1))
    nodes.append(helper.make_node("ArgMax", ["logits"], ["label"], name="argmax", axis=1, keepdims=0))
    first = modules[0]
    shape = ["batch", *first.input["shape"]]
    classes = [c for m in modules for c in m.classes]
    graph = helper.make_graph(
        nodes, "mwt_composed",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(classes)]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(classes)]),
         helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=list(first.model.opset_import), producer_name="mwt-compose")
    model.ir_version = first.model.ir_version
    sources = sorted({m.source for m in modules})
    meta = {
        "mwt.format": first.metadata["mwt.format"],
        "mwt.kind": "composed",
        "mwt.version": __version__,
        "mwt.classes": json.dumps(classes),
        "mwt.source_sha256": sources[0] if len(sources) == 1 else "mixed:" + ",".join(sources),
        "mwt.module_flops": str(sum(m.flops for m in modules)),
        "mwt.full_flops": first.metadata.get("mwt.full_flops", "0"),
        "mwt.input": json.dumps({**first.input, "name": INPUT}),
        "mwt.parts": json.dumps([
            {"classes": m.classes, "krr": m.metadata.get("mwt.krr"), "flops": m.flops, "source": m.source,
             "gates": m.metadata.get("mwt.gates"), "align": m.metadata.get("mwt.align")}
            for m in modules
        ]),
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model
