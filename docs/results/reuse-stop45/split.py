"""Batch-split execution: 2 one-thread sessions, each on half the batch, in two Python threads,
against one 2-thread session (spin off / on). Plain model vs a pair module (align 8, pad 0.05)."""
import sys, time, statistics
from concurrent.futures import ThreadPoolExecutor
import numpy as np, onnxruntime as ort
from exporter.compile import ModuleCompiler
from mwt.core.metadata import GateMode
compiler = ModuleCompiler.from_file(sys.argv[1]); pair = [int(c) for c in sys.argv[2].split(",")]
sel = compiler.select(pair, threshold=0.95, align=8, pad_limit=0.05)
mod = compiler.compile(sel, GateMode.folded)[0].SerializeToString()
plain = compiler.plain_model.SerializeToString()
x = np.random.default_rng(0).random((32, 1, 28, 28), dtype=np.float32)
def sess(m, t, spin):
    o = ort.SessionOptions(); o.intra_op_num_threads = t; o.inter_op_num_threads = 1; o.log_severity_level = 4
    if not spin: o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(m, o, providers=["CPUExecutionProvider"])
def med(f, n=200):
    for _ in range(10): f()
    t = []
    for _ in range(n):
        a = time.perf_counter(); f(); t.append(time.perf_counter() - a)
    return 1000 * statistics.median(t)
pool = ThreadPoolExecutor(2)
for m_name, m in (("plain", plain), ("module", mod)):
    for spin in (False, True):
        s = sess(m, 2, spin); n = s.get_inputs()[0].name
        print(m_name, f"one 2-thread session spin {spin}: {med(lambda: s.run(None, {n: x})):.2f} ms", flush=True); del s
    ss = [sess(m, 1, False) for _ in range(2)]; n = ss[0].get_inputs()[0].name
    halves = (x[:16], x[16:])
    f = lambda: [r.result() for r in [pool.submit(s.run, None, {n: h}) for s, h in zip(ss, halves)]]
    print(m_name, f"two 1-thread sessions, half batch each: {med(f):.2f} ms", flush=True)
    s1 = sess(m, 1, False)
    print(m_name, f"one 1-thread session: {med(lambda: s1.run(None, {n: x})):.2f} ms", flush=True)
