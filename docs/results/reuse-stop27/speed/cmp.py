"""Pair modules of several checkpoints against the plain model, batch 32, side by side in one process."""
import sys
import numpy as np, onnxruntime as ort
sys.path.insert(0, "/work/main")
from exporter.compile import ModuleCompiler
from exporter.flops import graph_cost
from mwt.core.metadata import GateMode
from runtime.latency import measure_side_by_side
threads = int(sys.argv[1]); ckpts = sys.argv[2].split(","); pairs = [p.split("/") for p in sys.argv[3].split(",")]
aligns = [int(a) for a in (sys.argv[4] if len(sys.argv) > 4 else "8").split(",")]
x = np.random.default_rng(0).random((32, 1, 28, 28), dtype=np.float32)
def sess(model):
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    o.add_session_config_entry("session.intra_op.allow_spinning", "0"); o.log_severity_level = 4
    s = ort.InferenceSession(model.SerializeToString(), o, providers=["CPUExecutionProvider"]); n = s.get_inputs()[0].name
    return lambda: s.run(None, {n: x})
comps = {c: ModuleCompiler.from_file(c) for c in ckpts}
plain = next(iter(comps.values())).plain_model
pm = graph_cost(plain).macs
for pair in pairs:
    cands = {"plain": sess(plain)}; fl = {}
    for c, comp in comps.items():
        for a in aligns:
            m, _ = comp.compile(comp.select(pair, align=a), GateMode.folded)
            tag = f"{c.split('/')[-1][:-3]}-a{a}"; cands[tag] = sess(m); fl[tag] = 100 * graph_cost(m).macs / pm
            print(tag, [i.dims[0] for i in m.graph.initializer if len(i.dims) == 4][2:], flush=True)
    t = measure_side_by_side(cands, min_seconds=3.0, min_runs=40); base = t["plain"].median_ms
    print("/".join(pair), {k: (round(v.median_ms, 3), round(base / v.median_ms, 2), round(fl.get(k, 100), 1)) for k, v in t.items()}, flush=True)
