"""Why pair modules gain less at 2 threads on M4: graph optimization level, channel alignment, per-op times."""
import json, sys, time, collections, os, tempfile
from concurrent.futures import ThreadPoolExecutor
pool = ThreadPoolExecutor(2)
import numpy as np, onnx, onnxruntime as ort
sys.path.insert(0, "/work/main")
from exporter.compile import ModuleCompiler
from mwt.core.metadata import GateMode
from runtime.latency import measure_side_by_side

ckpt = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
comp = ModuleCompiler.from_file(ckpt)
plain = comp.plain_model

def sess(model, level, threads=threads, prof=None):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.graph_optimization_level = level
    o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    o.log_severity_level = 4
    if prof:
        o.enable_profiling = True
        o.profile_file_prefix = prof
    return ort.InferenceSession(model.SerializeToString(), o, providers=["CPUExecutionProvider"])

ALL, EXT = ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
x = np.random.default_rng(0).random((32, 1, 28, 28), dtype=np.float32)
pairs = [("sneaker", "bag"), ("t-shirt", "pullover"), ("trouser", "dress")]
res = {}
for pair in pairs:
    cands = {}
    for align in (8, 16):
        m, _ = comp.compile(comp.select(list(pair), align=align), GateMode.folded)
        convs = [i for i in m.graph.initializer if len(i.dims) == 4]
        if align == 8:
            print(pair, "conv out widths", [i.dims[0] for i in convs], flush=True)
        for lname, level in (("all", ALL), ("ext", EXT)):
            s = sess(m, level); name = s.get_inputs()[0].name
            cands[f"a{align}-{lname}"] = (lambda s=s, name=name: s.run(None, {name: x}))
    for lname, level in (("all", ALL), ("ext", EXT)):
        s = sess(plain, level); name = s.get_inputs()[0].name
        cands[f"plain-{lname}"] = (lambda s=s, name=name: s.run(None, {name: x}))
    # row-parallel: one single-threaded session, the batch's halves run from two threads at once
    m, _ = comp.compile(comp.select(list(pair), align=8), GateMode.folded)
    for tag, model in (("a8", m), ("plain", plain)):
        s1 = sess(model, ALL, threads=1); name = s1.get_inputs()[0].name
        def rp(s1=s1, name=name):
            f = [pool.submit(s1.run, None, {name: x[i * 16:(i + 1) * 16]}) for i in range(2)]
            return [r.result() for r in f]
        cands[f"{tag}-rows2"] = rp
        cands[f"{tag}-1t"] = (lambda s1=s1, name=name: s1.run(None, {name: x}))
    t = measure_side_by_side(cands, min_seconds=4.0, min_runs=40)
    base = t["plain-all"].median_ms
    row = {k: (round(v.median_ms, 3), round(base / v.median_ms, 2)) for k, v in t.items()}
    print("-".join(pair), threads, "threads:", row, flush=True)
    res["-".join(pair)] = row
# per-op profile of sneaker/bag at align 8 (all) and plain (all)
def profile(model, tag):
    d = tempfile.mkdtemp()
    s = sess(model, ALL, prof=os.path.join(d, tag)); name = s.get_inputs()[0].name
    for _ in range(10): s.run(None, {name: x})
    for _ in range(100): s.run(None, {name: x})
    f = s.end_profiling()
    ev = json.load(open(f))
    by = collections.defaultdict(float); n = collections.Counter()
    for e in ev:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"]["op_name"]; by[op] += e["dur"]; n[op] += 1
    tot = sum(by.values())
    print(tag, "per-run us by op:", {k: round(v / 110) for k, v in sorted(by.items(), key=lambda kv: -kv[1])}, "total", round(tot / 110), "nodes/run", sum(n.values()) // 110, flush=True)
m, _ = comp.compile(comp.select(["sneaker", "bag"], align=8), GateMode.folded)
profile(m, "module"); profile(plain, "plain")
json.dump(res, open(f"/work/runs/speed/res-{threads}t.json", "w"), indent=1)
