"""Quiet-machine check of the runtime's batch parallelism and of onnxruntime's NCHWc layout on pair
modules (align 8, pad limit 0.05, threshold 0.95) against the plain full model, 2 threads, no
spinning; batches 1 and 32. Each session created, timed alone and closed; two alternating passes,
best median kept."""
import sys, time, statistics
import numpy as np
from exporter.compile import ModuleCompiler
from mwt.core.metadata import GateMode
from runtime.session import Parallelism, SessionSettings, make_session

compiler = ModuleCompiler.from_file(sys.argv[1]); pairs = [[int(c) for c in p.split(",")] for p in sys.argv[2].split(":")]
plain = compiler.plain_model.SerializeToString()
rng = np.random.default_rng(0)
xs = {b: rng.random((b, 1, 28, 28), dtype=np.float32) for b in (1, 32)}
variants = {
    "ops": SessionSettings(intra_op_threads=2, spin_wait=False, providers=("CPUExecutionProvider",)),
    "batch": SessionSettings(intra_op_threads=2, spin_wait=False, providers=("CPUExecutionProvider",), parallelism=Parallelism.batch),
    "ops, no NCHWc": SessionSettings(intra_op_threads=2, spin_wait=False, providers=("CPUExecutionProvider",),
                                     disabled_optimizers=("QDQPropagationTransformer", "NchwcTransformer")),
    "batch, no NCHWc": SessionSettings(intra_op_threads=2, spin_wait=False, providers=("CPUExecutionProvider",),
                                       parallelism=Parallelism.batch,
                                       disabled_optimizers=("QDQPropagationTransformer", "NchwcTransformer")),
}
def timeit(model, settings, x, n=150):
    s = make_session(model, settings)
    f = lambda: s.run(["logits"], {"input": x})
    for _ in range(10): f()
    t = []
    for _ in range(n):
        a = time.perf_counter(); f(); t.append(time.perf_counter() - a)
    if hasattr(s, "close"): s.close()
    return 1000 * statistics.median(t)
plain_ms = {}
for pair in pairs:
    sel = compiler.select(pair, threshold=0.95, align=8, pad_limit=0.05)
    proto, report = compiler.compile(sel, GateMode.folded)
    mod = proto.SerializeToString()
    for b, x in xs.items():
        best = {}
        for _ in range(2):
            for v, st in variants.items():
                best[("plain", v)] = min(best.get(("plain", v), 1e9), timeit(plain, st, x))
                best[("module", v)] = min(best.get(("module", v), 1e9), timeit(mod, st, x))
        base = best[("plain", "ops")]
        print(f"pair {pair} FLOPs {100*report.flops_kept:.2f}% batch {b}: " + " | ".join(
            f"{v}: plain {best[('plain', v)]:.2f} ms, module {best[('module', v)]:.2f} ms, speedup {best[('plain', v)]/best[('module', v)]:.2f}x"
            f" (over plain ops {base/best[('module', v)]:.2f}x)" for v in variants), flush=True)
