"""Which conv widths does onnxruntime's NCHWc transformer take on this machine?"""
import numpy as np, onnx, onnxruntime as ort
from onnx import helper, TensorProto, numpy_helper
def probe(cin, cmid, cout):
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((cmid, cin, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((cout, cmid, 3, 3)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1]*4), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Conv", ["b", "w2"], ["c"], pads=[1]*4), helper.make_node("Relu", ["c"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [32, cin, 14, 14])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [32, cout, 14, 14])], [w1, w2])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    o = ort.SessionOptions(); o.optimized_model_filepath = "/tmp/opt.onnx"; o.log_severity_level = 4
    ort.InferenceSession(m.SerializeToString(), o, providers=["CPUExecutionProvider"])
    opt = onnx.load("/tmp/opt.onnx")
    return [f"{n.domain.split('.')[-1] or 'onnx'}:{n.op_type}" for n in opt.graph.node]
for cin, cmid, cout in [(32, 2, 32), (32, 4, 32), (32, 8, 32), (32, 10, 32), (32, 12, 32), (32, 16, 32), (32, 24, 32), (32, 20, 32)]:
    print(cin, cmid, cout, probe(cin, cmid, cout))
