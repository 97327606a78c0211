"""Every pair's data-free gate-free module file (align 8 and 16) against the plain model, batch 32,
side by side in one process (interleaved rounds, medians), spin-waiting off; JSON + summary."""
import itertools, json, statistics, sys
import numpy as np, onnxruntime as ort
sys.path.insert(0, "/work/main")
from exporter.compile import ModuleCompiler
from exporter.flops import graph_cost
from mwt.core.metadata import GateMode
from runtime.latency import measure_side_by_side
ckpt, threads, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
comp = ModuleCompiler.from_file(ckpt)
x = np.random.default_rng(0).random((32, 1, 28, 28), dtype=np.float32)
def sess(model):
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    o.add_session_config_entry("session.intra_op.allow_spinning", "0"); o.log_severity_level = 4
    s = ort.InferenceSession(model.SerializeToString(), o, providers=["CPUExecutionProvider"]); n = s.get_inputs()[0].name
    return lambda: s.run(None, {n: x})
plain = sess(comp.plain_model); pm = graph_cost(comp.plain_model).macs
rows = []
for pair in itertools.combinations(range(len(comp.ckpt.classes)), 2):
    cands = {"plain": plain}; row = {"classes": [comp.ckpt.classes[c] for c in pair]}
    for a in (8, 16):
        m, _ = comp.compile(comp.select(list(pair), align=a), GateMode.folded)
        cands[f"a{a}"] = sess(m); row[f"flops_a{a}"] = graph_cost(m).macs / pm
    t = measure_side_by_side(cands, min_seconds=1.0, min_runs=30)
    for a in (8, 16):
        row[f"speedup_a{a}"] = t["plain"].median_ms / t[f"a{a}"].median_ms
    row["plain_ms"] = t["plain"].median_ms
    rows.append(row); print(row, flush=True)
summary = {k: {"min": min(r[k] for r in rows), "median": statistics.median(r[k] for r in rows), "max": max(r[k] for r in rows)}
           for k in ("speedup_a8", "speedup_a16", "flops_a8", "flops_a16", "plain_ms")}
json.dump({"checkpoint": ckpt, "threads": threads, "batch": 32, "rows": rows, "summary": summary}, open(out, "w"), indent=1)
print(json.dumps(summary, indent=1))
