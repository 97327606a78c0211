"""Stop 48: the same pair modules timed four ways against the plain full model, batch 32, 2 onnxruntime threads,
`batch` parallelism, no spinning, as benchmarks/reuse.py builds them (threshold 0.95, align 8, pad limit 0.05):
c1 / c20 / c200: both models' sessions alive, timed in alternating turns of 1, 20 or 200 calls
(runtime.latency.measure_side_by_side, 2 s); alone: each model's sessions created, timed (200 calls after 10
warm-up calls) and closed before the other's exist, plain and module alternately, two passes, median of all.
Usage: python protocol48.py CKPT.pt PAIR... (a pair as 0,1)"""
import statistics
import sys
import time

import numpy as np

from exporter.compile import ModuleCompiler
from mwt.core.metadata import GateMode
from runtime.composed import ComposedClassifier
from runtime.latency import measure_side_by_side, side_by_side_settings
from runtime.module_file import module_from_model
from runtime.session import Parallelism

compiler = ModuleCompiler.from_file(sys.argv[1])
settings = side_by_side_settings(2, ("CPUExecutionProvider",), Parallelism.batch)
x = np.random.default_rng(0).random((32, *compiler.ckpt.spec.input_shape), dtype=np.float32)
plain_file = module_from_model(compiler.plain_model)


def alone(file, calls=200):
    runner = ComposedClassifier([file], settings=settings)
    for _ in range(10):
        runner.logits(x)
    t = []
    for _ in range(calls):
        a = time.perf_counter(); runner.logits(x); t.append(1000 * (time.perf_counter() - a))
    del runner
    return t


for spec in sys.argv[2:]:
    pair = [int(c) for c in spec.split(",")]
    module, report = compiler.compile(compiler.select(pair, threshold=0.95, align=8, pad_limit=0.05), GateMode.folded)
    module_file = module_from_model(module)
    row = []
    plain = ComposedClassifier([plain_file], settings=settings)
    mod = ComposedClassifier([module_file], settings=settings)
    for cpt in (1, 20, 200):
        t = measure_side_by_side({"plain": lambda: plain.logits(x), "module": lambda: mod.logits(x)},
                                 min_seconds=2.0, max_runs=2000, calls_per_turn=cpt)
        row.append(f"c{cpt} {t['plain'].median_ms / t['module'].median_ms:.2f}x "
                   f"({t['plain'].median_ms:.2f}/{t['module'].median_ms:.2f} ms)")
    del plain, mod
    tp, tm = [], []
    for _ in range(2):
        tp += alone(plain_file); tm += alone(module_file)
    p, m = statistics.median(tp), statistics.median(tm)
    row.append(f"alone {p / m:.2f}x ({p:.2f}/{m:.2f} ms)")
    names = ",".join(compiler.ckpt.classes[c] for c in pair)
    print(f"{names:22} FLOPs {100 * report.flops_kept:5.2f}%  " + "  ".join(row), flush=True)
