"""Per-node times (onnxruntime profiler) of one pair module and the plain model, batch 32."""
import sys, json, collections, os, tempfile
import numpy as np, onnxruntime as ort
sys.path.insert(0, "/work/main")
from exporter.compile import ModuleCompiler
from mwt.core.metadata import GateMode
ckpt, threads, pair = sys.argv[1], int(sys.argv[2]), sys.argv[3].split("/")
comp = ModuleCompiler.from_file(ckpt)
x = np.random.default_rng(0).random((32, 1, 28, 28), dtype=np.float32)
def profile(model):
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    o.add_session_config_entry("session.intra_op.allow_spinning", "0"); o.log_severity_level = 4
    o.enable_profiling = True; o.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "p")
    s = ort.InferenceSession(model.SerializeToString(), o, providers=["CPUExecutionProvider"]); name = s.get_inputs()[0].name
    for _ in range(210): s.run(None, {name: x})
    ev = json.load(open(s.end_profiling())); by = collections.defaultdict(float); shape = {}
    for e in ev:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            k = e["name"][:-12]; by[k] += e["dur"]
            shape[k] = (e["args"]["op_name"], [list(d.values())[0] for d in e["args"].get("output_type_shape", [])][:1])
    tot = sum(by.values())
    for k, v in by.items():
        if v / 210 >= 15: print(f"  {v/210:7.0f} us  {shape[k][0]:<14} {shape[k][1]}")
    print(f"  total {tot/210:.0f} us")
m, _ = comp.compile(comp.select(pair, align=8), GateMode.folded)
print("module", pair); profile(m)
print("plain"); profile(comp.plain_model)
