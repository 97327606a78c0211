"""Where a pair module's batch-32 time goes on this CPU: per-op-type totals, module vs plain,
under several session settings (spin on/off, 1/2 threads, align 8/16)."""
import json, sys, time, statistics, tempfile, os
from collections import defaultdict
import numpy as np, onnxruntime as ort
from exporter.compile import ModuleCompiler
from mwt.core.metadata import GateMode

path = sys.argv[1]; pair = [int(c) for c in sys.argv[2].split(",")]
compiler = ModuleCompiler.from_file(path)
plain = compiler.plain_model.SerializeToString()
mods = {}
for align in (8, 16):
    sel = compiler.select(pair, threshold=0.95, align=align, pad_limit=0.05)
    proto, _ = compiler.compile(sel, GateMode.folded)
    mods[f"a{align}"] = proto.SerializeToString()
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    widths = []
    inits = {i.name: i for i in proto.graph.initializer}
    for n in convs:
        w = inits.get(n.input[1]); widths.append(tuple(w.dims[:2]) if w is not None else None)
    print(f"align {align} conv (out,in):", widths)
x = np.random.default_rng(0).random((32, 1, 28, 28), dtype=np.float32)

def sess(model, threads, spin, profile=False):
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    o.log_severity_level = 4
    if not spin: o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile: o.enable_profiling = True; o.profile_file_prefix = tempfile.mkdtemp() + "/p"
    return ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])

def timeit(s, n=200):
    name = s.get_inputs()[0].name
    for _ in range(10): s.run(None, {name: x})
    t = []
    for _ in range(n):
        a = time.perf_counter(); s.run(None, {name: x}); t.append(time.perf_counter() - a)
    return 1000 * statistics.median(t)

for threads in (1, 2):
    for spin in (False, True):
        r = {}
        for k in range(2):  # two alternating passes, keep the best median
            for name, m in (("plain", plain), *mods.items()):
                s = sess(m, threads, spin); v = timeit(s); del s
                r[name] = min(r.get(name, 1e9), v)
        print(f"threads {threads} spin {spin}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in r.items())
              + " | speedup " + ", ".join(f"{k} {r['plain']/r[k]:.2f}x" for k in mods))

for name, m in (("plain", plain), ("a8", mods["a8"]), ("a16", mods["a16"])):
    s = sess(m, 2, False, profile=True); timeit(s, 100); f = s.end_profiling()
    ev = json.load(open(f)); per = defaultdict(float); cnt = defaultdict(int); kern = {}
    for e in ev:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"].get("op_name"); per[op] += e["dur"]; cnt[op] += 1
    tot = sum(per.values())
    print(name, f"kernel total/run {tot/100/1000:.2f} ms:", ", ".join(f"{k} {v/100/1000:.3f}ms({cnt[k]//100})" for k, v in sorted(per.items(), key=lambda kv: -kv[1])))
