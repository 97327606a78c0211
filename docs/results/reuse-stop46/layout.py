"""Stop 46: which streams to round up to AVX-512's block of 16 so that fewer layout changes remain.
Pair modules of a checkpoint (threshold 0.95), each policy's kept kernels compiled gate-free and timed
against the plain full model at batch 32, 2 threads, no spinning, `ops` and `batch` parallelism. Each
session created, timed alone and closed; two alternating passes, best median kept.
Policies: a8p05 (R14's scoring: align 8, pad limit 0.05, narrow streams exact); a16p05n / a16p10n
(align 16, the pad limit applied to narrow streams too); stage3 (every stream from the third stage on
rounded up to 16, earlier ones exact)."""
import sys, time, statistics, itertools
from dataclasses import replace
from types import MappingProxyType
import numpy as np
from exporter.compile import ModuleCompiler
from mwt.core.metadata import GateMode
from mwt.cost import cost_model
from mwt.selection import retained_kernels, pooled_statistic
from runtime.session import Parallelism, SessionSettings, make_session
from onnx import numpy_helper

compiler = ModuleCompiler.from_file(sys.argv[1]); pairs = [[int(c) for c in p.split(",")] for p in sys.argv[2].split(":")]
ck = compiler.ckpt; mod = ck.modularization; cost = cost_model(ck.build(), ck.spec.input_shape)
plain = compiler.plain_model.SerializeToString()
x = np.random.default_rng(0).random((32, 1, 28, 28), dtype=np.float32)
EARLY = ("features.0", "features.1", "features.3", "features.4")

def padded(classes, align, pad, narrow, skip=()):
    ret = retained_kernels(mod, classes, 0.95); out = dict(ret); base = cost.kept_macs(ret, len(classes))
    for layer in mod.layers:
        keep = ret[layer]; w = int(keep.sum()); short = (-w) % align
        if not short or layer in skip or (w < align and not narrow): continue
        freq = pooled_statistic(mod, "frequency", layer, classes).numpy()
        order = np.argsort(-freq, kind="stable"); p = keep.copy(); p[order[~p[order]][:short]] = True
        if pad is not None and cost.kept_macs({**ret, layer: p}, len(classes)) - base > pad * base: continue
        out[layer] = p
    return out

policies = {"a8p05": lambda c: compiler.select(c, threshold=0.95, align=8, pad_limit=0.05).kept,
            "a16p05n": lambda c: padded(c, 16, 0.05, True), "a16p10n": lambda c: padded(c, 16, 0.10, True),
            "stage3": lambda c: padded(c, 16, None, True, EARLY)}
settings = {p: SessionSettings(intra_op_threads=2, spin_wait=False, providers=("CPUExecutionProvider",), parallelism=p)
            for p in (Parallelism.ops, Parallelism.batch)}

def timeit(model, st, n=150):
    s = make_session(model, st); f = lambda: s.run(["logits"], {"input": x})
    for _ in range(10): f()
    t = []
    for _ in range(n):
        a = time.perf_counter(); f(); t.append(time.perf_counter() - a)
    if hasattr(s, "close"): s.close()
    return 1000 * statistics.median(t)

for pair in pairs:
    base_sel = compiler.select(pair, threshold=0.95, align=8, pad_limit=0.05)
    built = {}
    for name, policy in policies.items():
        # the kept kernels as the policy chose them; the channel planner rounds the same streams up to 16
        # (a padded kernel whose folded gate is 0 is removed and comes back as the planner's padding)
        kept = policy(pair); exact = retained_kernels(mod, pair, 0.95)
        left = frozenset(k for k in kept if int(kept[k].sum()) == int(exact[k].sum()) and int(exact[k].sum()) % 16)
        sel = base_sel if name == "a8p05" else replace(
            base_sel, kept=MappingProxyType({k: v.copy() for k, v in kept.items()}), align=16, unaligned=left)
        proto, report = compiler.compile(sel, GateMode.folded)
        inits = {i.name: i for i in proto.graph.initializer}
        widths = [int(inits[n.input[1]].dims[0]) for n in proto.graph.node if n.op_type == "Conv" and n.input[1] in inits]
        built[name] = (proto.SerializeToString(), report.flops_kept, widths)
    for par, st in settings.items():
        best = {}
        for _ in range(2):
            for k, m in [("plain", plain)] + [(k, v[0]) for k, v in built.items()]:
                best[k] = min(best.get(k, 1e9), timeit(m, st))
        for k, (_, kept, widths) in built.items():
            print(f"pair {pair} {par.value:5} {k:8} FLOPs {100*kept:5.2f}% {best[k]:.2f} ms vs plain {best['plain']:.2f}: "
                  f"{best['plain']/best[k]:.2f}x widths {widths}", flush=True)
