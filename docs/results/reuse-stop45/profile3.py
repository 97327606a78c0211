"""Module widths vs onnxruntime layouts: FLOPs kept and batch-32 speedup of pair modules under
several alignments / pad limits, 2 threads, spinning off (the benchmark's) and on (ORT's default).
Each session timed alone (created, timed, closed), two alternating passes, best median kept."""
import sys, time, statistics
import numpy as np, onnxruntime as ort
from exporter.compile import ModuleCompiler
from mwt.core.metadata import GateMode

path = sys.argv[1]; pairs = [[int(c) for c in p.split(",")] for p in sys.argv[2].split(":")]
variants = [(8, 0.05, "up"), (8, None, "down"), (8, None, "nearest"), (16, None, "down"), (16, None, "nearest"), (16, 0.05, "nearest")]
compiler = ModuleCompiler.from_file(path)
plain = compiler.plain_model.SerializeToString()
x = np.random.default_rng(0).random((32, 1, 28, 28), dtype=np.float32)

def sess(model, threads, spin):
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1; o.log_severity_level = 4
    if not spin: o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])

def timeit(m, threads, spin, n=150):
    s = sess(m, threads, spin); name = s.get_inputs()[0].name
    for _ in range(10): s.run(None, {name: x})
    t = []
    for _ in range(n):
        a = time.perf_counter(); s.run(None, {name: x}); t.append(time.perf_counter() - a)
    return 1000 * statistics.median(t)

for pair in pairs:
    mods = {}
    for align, pad, rnd in variants:
        sel = compiler.select(pair, threshold=0.95, align=align, pad_limit=pad, rounding=rnd)
        proto, report = compiler.compile(sel, GateMode.folded)
        widths = [d for d in (next((i.dims[0] for i in proto.graph.initializer if i.name == n.input[1]), None)
                              for n in proto.graph.node if n.op_type == "Conv")]
        mods[f"a{align} p{pad} {rnd}"] = (proto.SerializeToString(), report.flops_kept, widths)
    for spin in (False,):
        best = {}
        for _ in range(2):
            for k, m in [("plain", plain)] + [(k, v[0]) for k, v in mods.items()]:
                best[k] = min(best.get(k, 1e9), timeit(m, 2, spin))
        for k, (_, kept, widths) in mods.items():
            print(f"pair {pair} spin {spin!s:5} {k:10} FLOPs {100*kept:5.2f}%  {best[k]:.2f} ms vs plain {best['plain']:.2f}: "
                  f"{best['plain']/best[k]:.2f}x  widths {widths}", flush=True)
