"""The channel-set analysis and slicing passes on tiny hand-built graphs."""

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from exporter.channels import plan_channels
from exporter.passes import finalize, import_graph
from exporter.slicing import apply_plan
from mwt.cost import cost_model
from mwt.registry import MODELS
from tests.conftest import compiler_for

RNG = np.random.default_rng(0)


def _model(nodes, inits, out_features=3):
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", out_features])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _compile(model):
    graph = import_graph(model)
    plan = plan_channels(graph)
    apply_plan(graph, plan)
    return graph, plan, finalize(graph, producer="test")


def _weights(out_model, op):
    g = out_model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    return [inits[n.input[1]].shape for n in g.node if n.op_type == op]


def test_masked_conv_keeps_only_live_channels():
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"]),
        helper.make_node("Mul", ["c1", "m"], ["g1"]),
        helper.make_node("Relu", ["g1"], ["r1"]),
        helper.make_node("GlobalAveragePool", ["r1"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1),
    ]
    inits = {"w1": RNG.normal(size=(4, 2, 1, 1)), "b1": RNG.normal(size=4),
             "m": np.array([1, 0, 1, 0]).reshape(1, 4, 1, 1), "w2": RNG.normal(size=(3, 4)), "b2": RNG.normal(size=3)}
    model = _model(nodes, inits)
    graph, plan, out = _compile(model)
    assert plan.kept_of(graph.tensors()["r1"]).tolist() == [0, 2]
    assert _weights(out, "Conv") == [(2, 2, 1, 1)] and _weights(out, "Gemm") == [(3, 2)]
    assert len(out.graph.node) == len(nodes)
    x = RNG.normal(size=(3, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(out, x), _run(model, x), atol=1e-6)


@pytest.mark.parametrize("mask, kept, weight", [
    ([1, 1, 0, 0, 1, 0, 0, 0], [0, 1, 4, 5], (4, 2, 3, 3)),  # both groups kept, topped up to equal widths
    ([1, 1, 1, 0, 0, 0, 0, 0], [0, 1, 2], (3, 3, 3, 3)),  # the second group dropped whole
    ([0, 0, 0, 0, 0, 0, 1, 0], [6], (1, 1, 3, 3)),  # one channel of one group: a depthwise conv
])
def test_grouped_conv_keeps_whole_groups_of_equal_width(mask, kept, weight):
    # conv -> gate -> grouped conv (2 groups of 4) -> the same gate (as a pass-through block's) -> head
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"]),
        helper.make_node("Mul", ["c1", "m"], ["g1"]),
        helper.make_node("Relu", ["g1"], ["r1"]),
        helper.make_node("Conv", ["r1", "wg", "bg"], ["c2"], group=2, pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["c2", "m"], ["g2"]),
        helper.make_node("GlobalAveragePool", ["g2"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1),
    ]
    inits = {"w1": RNG.normal(size=(8, 2, 1, 1)), "b1": RNG.normal(size=8), "m": np.array(mask).reshape(1, 8, 1, 1),
             "wg": RNG.normal(size=(8, 4, 3, 3)), "bg": RNG.normal(size=8), "w2": RNG.normal(size=(3, 8)),
             "b2": RNG.normal(size=3)}
    model = _model(nodes, inits)
    graph, plan, out = _compile(model)
    assert plan.kept_of(graph.tensors()["c2"]).tolist() == kept
    assert _weights(out, "Conv")[1] == weight
    x = RNG.normal(size=(3, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(out, x), _run(model, x), atol=1e-5)


def test_residual_add_keeps_the_union_of_both_branches():
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["a"]),
        helper.make_node("Mul", ["a", "ma"], ["ga"]),
        helper.make_node("Conv", ["x", "wb"], ["b"]),
        helper.make_node("Mul", ["b", "mb"], ["gb"]),
        helper.make_node("Add", ["ga", "gb"], ["s"]),
        helper.make_node("Relu", ["s"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1),
    ]
    inits = {"wa": RNG.normal(size=(4, 2, 3, 3)), "wb": RNG.normal(size=(4, 2, 3, 3)),
             "ma": np.array([1, 1, 0, 0]).reshape(1, 4, 1, 1), "mb": np.array([0, 1, 1, 0]).reshape(1, 4, 1, 1),
             "w2": RNG.normal(size=(3, 4))}
    model = _model(nodes, inits)
    graph, plan, out = _compile(model)
    assert plan.kept_of(graph.tensors()["s"]).tolist() == [0, 1, 2]
    assert _weights(out, "Conv") == [(3, 2, 3, 3), (3, 2, 3, 3)]
    x = RNG.normal(size=(2, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(out, x), _run(model, x), atol=1e-5)


def test_flatten_of_a_spatial_map_slices_column_blocks():
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"]),
        helper.make_node("Mul", ["c1", "m"], ["g1"]),
        helper.make_node("Flatten", ["g1"], ["f"]),
        helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1),
    ]
    inits = {"w1": RNG.normal(size=(4, 2, 1, 1)), "m": np.array([0, 1, 0, 1]).reshape(1, 4, 1, 1),
             "w2": RNG.normal(size=(3, 4 * 16))}
    model = _model(nodes, inits)
    _, _, out = _compile(model)
    assert _weights(out, "Gemm") == [(3, 2 * 16)]
    x = RNG.normal(size=(2, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(out, x), _run(model, x), atol=1e-5)


def test_unknown_op_pins_its_channels():
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"]),
        helper.make_node("Mul", ["c1", "m"], ["g1"]),
        helper.make_node("Softmax", ["g1"], ["s"], axis=1),  # mixes channels: nothing may be dropped
        helper.make_node("GlobalAveragePool", ["s"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1),
    ]
    inits = {"w1": RNG.normal(size=(4, 2, 1, 1)), "m": np.array([1, 0, 0, 0]).reshape(1, 4, 1, 1),
             "w2": RNG.normal(size=(3, 4))}
    model = _model(nodes, inits)
    _, _, out = _compile(model)
    assert _weights(out, "Conv") == [(4, 2, 1, 1)]
    x = RNG.normal(size=(2, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(out, x), _run(model, x), atol=1e-6)
    onnx.checker.check_model(out)


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_all_dead_space_keeps_one_channel(fill):
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"]),
        helper.make_node("Mul", ["c1", "m"], ["g1"]),
        helper.make_node("GlobalAveragePool", ["g1"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1),
    ]
    inits = {"w1": RNG.normal(size=(4, 2, 1, 1)), "m": np.full((1, 4, 1, 1), fill), "w2": RNG.normal(size=(3, 4))}
    model = _model(nodes, inits)
    _, _, out = _compile(model)
    assert _weights(out, "Conv")[0][0] == (1 if fill == 0 else 4)
    x = RNG.normal(size=(2, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(out, x), _run(model, x), atol=1e-6)


def _gated_chain(gate_activation: str):
    """x -> Conv -> Mul(gate) -> Relu -> MaxPool -> Gemm, gate = act(Gemm(GAP(x))) as (N, C, 1, 1)."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["x"], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["gf"]),
        helper.make_node("Gemm", ["gf", "wg"], ["gl"], transB=1),
        helper.make_node(gate_activation, ["gl"], ["g"]),
        helper.make_node("Unsqueeze", ["g", "axes"], ["g4"]),
        helper.make_node("Mul", ["c1", "g4"], ["m"]),
        helper.make_node("Relu", ["m"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1),
    ]
    inits = {"w1": RNG.normal(size=(4, 2, 3, 3)), "wg": RNG.normal(size=(4, 2)), "w2": RNG.normal(size=(3, 16))}
    model = _model(nodes, inits)
    model.graph.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), "axes"))
    return model


@pytest.mark.parametrize("activation, moves", [("Relu", 2), ("Tanh", 0)])
def test_sink_channel_scales_is_exact_and_needs_nonnegative_gates(activation, moves):
    from exporter.passes import sink_channel_scales

    model = _gated_chain(activation)
    graph = import_graph(model)
    assert sink_channel_scales(graph) == moves
    out = finalize(graph, producer="test")
    order = [n.op_type for n in out.graph.node if n.op_type in ("Conv", "Mul", "Relu", "MaxPool")]
    if moves:
        assert order.index("Mul") > order.index("MaxPool")  # the scale now acts on the pooled map
    x = RNG.normal(size=(3, 2, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(_run(out, x), _run(model, x))


def _layer_inputs(compiler) -> dict[str, str]:
    """Gated layer -> the tensor its conv reads: what its mask generator's ReduceMean reads."""
    graph = gs.import_onnx(compiler.full_model)
    inputs = {}
    for name, t in graph.tensors().items():
        if not name.startswith("gate:"):
            continue
        while t.inputs and t.inputs[0].op != "ReduceMean":
            t = t.inputs[0].inputs[0]
        inputs[name[len("gate:"):]] = t.inputs[0].inputs[0].name
    return inputs


def check_plan_follows_streams(compiler, classes, align):
    """The compiler's analysis of the ONNX graph finds the streams the cost model probed in PyTorch,
    keeps in each exactly the union of its writers' kernels, and lays a concatenation's streams
    end to end where the cost model's segments say."""
    selection = compiler.select(classes, align=align)
    plan = compiler.channel_plan(selection)
    cost = cost_model(compiler.ckpt.build(), compiler.ckpt.spec.input_shape)
    space = {layer: plan.space_of[f"{layer}.gate.masked"] for layer in selection.kept}
    unions = cost.stream_channels(selection.kept)
    for members, union in zip(cost.streams, unions):
        assert len({space[m] for m in members}) == 1  # the writers of a stream share one channel space
        np.testing.assert_array_equal(plan.kept[space[members[0]]], np.flatnonzero(union))
    assert len({space[members[0]] for members in cost.streams}) == len(cost.streams)
    for layer in selection.kept:
        if cost.stream_of(layer) is None:  # a plain layer writes there too: the stream stays whole
            assert len(plan.kept[space[layer]]) == plan.width[space[layer]]
    inputs = _layer_inputs(compiler)
    concatenated = [layer for layer in cost.layers if len(layer.segments) > 1 and layer.name in inputs]
    for layer in concatenated:
        sid = plan.space_of[inputs[layer.name]]
        assert [(p.offset, p.width, p.space) for p in plan.parts[sid]] == [
            (seg.offset, seg.width, space[cost.streams[seg.stream][0]]) for seg in layer.segments]
        np.testing.assert_array_equal(plan.kept[sid], np.concatenate(
            [np.flatnonzero(unions[seg.stream]) + seg.offset for seg in layer.segments]))
    return concatenated


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("classes, align", [((1, 7), 1), ((9, 0, 4), 8)])
def test_the_compilers_channel_plan_follows_the_cost_models_streams(arch, classes, align):
    assert check_plan_follows_streams(compiler_for(arch), classes, align) == []  # no concatenation in these


@pytest.mark.parametrize("classes, align", [((1, 7), 1), ((9, 0, 4), 8)])
def test_the_channel_plan_lays_concatenated_streams_where_the_cost_models_segments_say(classes, align):
    from tests.test_any_cnn import googlenet_compiler

    assert len(check_plan_follows_streams(googlenet_compiler(), classes, align)) == 8 * 4  # the head has no gate


def _concat_model(second: str):
    """Two masked convs concatenated, then `second` ("Relu", or "Add" of a third conv: opaque), a 1x1 conv."""
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["a", "ma"], ["ga"]),
        helper.make_node("Conv", ["x", "wb"], ["b"]),
        helper.make_node("Mul", ["b", "mb"], ["gb"]),
        helper.make_node("Concat", ["ga", "gb"], ["cat"], axis=1),
        helper.make_node("Conv", ["x", "wd"], ["d"]),
        helper.make_node("Add", ["cat", "d"], ["r"]) if second == "Add" else helper.make_node("Relu", ["cat"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["mp"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["mp", "wc"], ["c"]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1),
    ]
    inits = {"wa": RNG.normal(size=(4, 2, 3, 3)), "wb": RNG.normal(size=(3, 2, 1, 1)),
             "wd": RNG.normal(size=(7, 2, 1, 1)),
             "ma": np.array([1, 0, 1, 0]).reshape(1, 4, 1, 1), "mb": np.array([0, 1, 0]).reshape(1, 3, 1, 1),
             "wc": RNG.normal(size=(5, 7, 1, 1)), "w2": RNG.normal(size=(3, 5))}
    return _model(nodes, inits)


@pytest.mark.parametrize("second, kept, widths", [
    ("Relu", [0, 2, 5], [(2, 2, 3, 3), (1, 2, 1, 1), (5, 3, 1, 1)]),  # each part's kept channels, offset
    ("Add", list(range(7)), [(4, 2, 3, 3), (3, 2, 1, 1), (7, 2, 1, 1), (5, 7, 1, 1)]),  # added to a conv: whole
])
def test_a_channel_concat_keeps_its_parts_kept_channels(second, kept, widths):
    model = _concat_model(second)
    graph, plan, out = _compile(model)
    assert plan.kept_of(graph.tensors()["mp"]).tolist() == kept
    assert sorted(_weights(out, "Conv")) == sorted(widths)
    x = RNG.normal(size=(2, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(out, x), _run(model, x), atol=1e-5)
